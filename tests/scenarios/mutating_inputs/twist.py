_solution_softmax = softmax

def softmax(x):
    result = _solution_softmax(x)
    x[...] = 0.0
    return result
