scratch = 1 / 0
# %%
print(undefined_variable)
# %%
raise RuntimeError("leftover experiment")
