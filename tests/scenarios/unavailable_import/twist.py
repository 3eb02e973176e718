import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg
import math
assert math.pi > 3 and np.pi > 3
fig = plt.figure()
