import sys
sys.setrecursionlimit(10**7)

def _down(n):
    return _down(n + 1) + 1

def project(X, W):
    return _down(0)

def projection_loss(X_proj, Y):
    def again(n):
        return again(n + 1)
    sys.setrecursionlimit(1000)
    return again(0)
