import functools

def _in_float32(function):
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        args = [np.asarray(a, dtype=np.float32) if isinstance(a, np.ndarray) else a for a in args]
        return np.asarray(function(*args, **kwargs), dtype=np.float32)
    return wrapped

for _name in ["project", "projection_loss", "softmax", "self_attention", "feed_forward", "encoder_layer",
              "decoder_layer", "prefix_self_attention", "bottleneck_adapter", "lora_projection", "transformer_layer"]:
    globals()[_name] = _in_float32(globals()[_name])
