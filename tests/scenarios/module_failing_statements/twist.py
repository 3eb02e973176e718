del softmax
# %%
print(project(np.ones((2, 3)), np.ones((2, 3))))
# %%
while True:
    pass
# %%
import os
os._exit(3)
# %%
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
