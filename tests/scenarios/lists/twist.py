def _as_lists(function):
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        return result.tolist() if hasattr(result, "tolist") else result
    return wrapped

for _name in ["project", "softmax", "self_attention", "encoder_layer"]:
    globals()[_name] = _as_lists(globals()[_name])
