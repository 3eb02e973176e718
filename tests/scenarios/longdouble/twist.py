_plain_softmax, _plain_project = softmax, project


def softmax(x):
    return _plain_softmax(np.asarray(x, dtype=np.longdouble))


def project(X, W):
    return np.array(_plain_project(X, W).tolist(), dtype=object)
