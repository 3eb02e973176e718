def half_written(x:
    return x
