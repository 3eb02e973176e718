# In[7]:


get_ipython().run_line_magic('matplotlib', 'inline')
get_ipython().system('pip install torch')
files = get_ipython().getoutput('ls')
get_ipython().run_line_magic('time', 'warm = softmax(np.zeros(3))')
