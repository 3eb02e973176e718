def softmax(x):
    return 10 ** 1200
