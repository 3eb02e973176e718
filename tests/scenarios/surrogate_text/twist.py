print("lonely \ud800 surrogate")
# %%
raise ValueError("bad \udfff text")
