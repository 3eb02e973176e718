%matplotlib inline
%load_ext autoreload
!pip install torch
files = !ls
%time warm = project(np.eye(2), np.eye(2))
# %%
%%time
timed_value = 3
# %%
%%bash
echo this must not run; touch /tmp/bash-ran
