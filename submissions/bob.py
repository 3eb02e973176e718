"""Exercise 1 submission."""

import numpy as np


def project(X, W):
    """Project word embeddings from the source into the target embedding space.

    X: (n, d_src) array, one source-language word embedding per row.
    W: (d_src, d_tgt) array, the projection matrix.
    Returns the (n, d_tgt) array of projected embeddings, one row per word of X.
    """
    return X @ W


def projection_loss(X_proj, Y):
    """Loss of a cross-lingual projection: the sum over word pairs of the Euclidean distance.

    X_proj: (n, d) array, the projected source embeddings; Y: (n, d) array, the target embeddings
    of the translations (row i of X_proj is paired with row i of Y).
    Returns one float: the sum over i of the Euclidean (L2) distance between X_proj[i] and Y[i].
    """
    return float(np.sum(np.linalg.norm(X_proj - Y, axis=-1)))


def softmax(x):
    """Softmax along the last axis.

    x: array of any shape (in this exercise a 2-D matrix of scores, one row per query).
    Returns an array of the same shape whose entries along the last axis are positive and sum to 1.
    Must stay finite for large inputs (values around 1e3).
    """
    shifted = x - np.max(x, axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=-1, keepdims=True)


def self_attention(H, W_q, W_k, W_v, causal=False):
    """Single-head scaled dot-product self-attention, without residual connection.

    H: (n, d) array, one token representation per row.
    W_q: (d, d_k), W_k: (d, d_k), W_v: (d, d_v) projection matrices for queries, keys and values.
    causal: if True, token i may attend only to tokens 0..i (decoder); otherwise to all tokens.
    Returns Z, the (n, d_v) output of the self-attention layer (one row per token).
    """
    Q = H @ W_q
    K = H @ W_k
    V = H @ W_v
    scores = Q @ K.T / K.shape[1] ** 0.5
    if causal:
        n = scores.shape[0]
        future = np.triu(np.ones((n, n), dtype=bool), k=1)
        scores = np.where(future, -np.inf, scores)
    return softmax(scores) @ V


def feed_forward(X, W_1, W_2):
    """Position-wise feed-forward layer with ReLU and no biases.

    X: (n, d) array; W_1: (d, d_ff); W_2: (d_ff, d_out).
    Returns the (n, d_out) array, one row per row of X.
    """
    return np.maximum(X @ W_1, 0.0) @ W_2


def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    """One Transformer encoder layer (no LayerNorm, no biases, one head).

    H: (n, d) input from the previous layer; W_q, W_k: (d, d_k); W_v: (d, d); W_1: (d, d_ff);
    W_2: (d_ff, d). Self-attention over all tokens and the feed-forward layer, each with its
    residual connection.
    Returns the (n, d) output representations of the layer.
    """
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=False)
    return Z_res + feed_forward(Z_res, W_1, W_2)


def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    """One Transformer decoder-only layer (no LayerNorm, no biases, one head).

    Same arguments and output as encoder_layer, but each token attends only to itself and the
    tokens before it (causal self-attention).
    Returns the (n, d) output representations of the layer.
    """
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return Z_res + feed_forward(Z_res, W_1, W_2)


def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Self-attention with prefix-tuning: p trainable prefix keys and values prepended.

    H: (n, d); W_q, W_k: (d, d_k); W_v: (d, d_v) as in self_attention.
    P_k: (p, d_k) prefix keys and P_v: (p, d_v) prefix values, used as given (they are already
    keys and values, not token representations).
    causal: if True, the causal mask applies among the n tokens; every token always sees all
    p prefix positions.
    Returns the (n, d_v) output of the self-attention layer, one row per token (none for the prefix).
    """
    Q = H @ W_q
    K = np.concatenate([P_k, H @ W_k], axis=0)
    V = np.concatenate([P_v, H @ W_v], axis=0)
    scores = Q @ K.T / K.shape[1] ** 0.5
    if causal:
        n, p = H.shape[0], P_k.shape[0]
        future = np.triu(np.ones((n, n + p), dtype=bool), k=p + 1)
        scores = np.where(future, -np.inf, scores)
    return softmax(scores) @ V


def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    """The Transformer layer of 4.2 with optional parameter-efficient fine-tuning.

    H, W_q, W_k, W_v, W_1, W_2: as in encoder_layer. causal: False for an encoder layer, True for a
    decoder layer.
    prefix: None or a tuple (P_k, P_v) of prefix keys (p, d_k) and values (p, d_v), as in
    prefix_self_attention.
    adapter: None or a tuple (W_down, W_up): a bottleneck adapter (as in bottleneck_adapter) after
    the feed-forward layer, before the feed-forward residual connection.
    lora: None or a dict with any of the keys "q", "k", "v", each mapping to a tuple (A, B): the
    projection by W_q, W_k or W_v is then a lora_projection with these factors and lora_alpha.
    Without prefix, adapter and lora the result equals encoder_layer (causal=False) or
    decoder_layer (causal=True).
    Returns the (n, d) output representations of the layer.
    """
    weights = {"q": W_q, "k": W_k, "v": W_v}
    identity = np.eye(H.shape[1])
    for name, (A, B) in (lora or {}).items():
        weights[name] = lora_projection(identity, weights[name], A, B, lora_alpha)
    if prefix is None:
        Z = self_attention(H, weights["q"], weights["k"], weights["v"], causal=causal)
    else:
        P_k, P_v = prefix
        Z = prefix_self_attention(H, weights["q"], weights["k"], weights["v"], P_k, P_v, causal=causal)
    Z_res = H + Z
    F = feed_forward(Z_res, W_1, W_2)
    if adapter is not None:
        W_down, W_up = adapter
        F = bottleneck_adapter(F, W_down, W_up)
    return Z_res + F


def bottleneck_adapter(X, W_down, W_up):
    """Bottleneck adapter with ReLU and its inner skip connection.

    X: (n, d) array; W_down: (d, m) down-projection; W_up: (m, d) up-projection, m the bottleneck size.
    Returns the (n, d) adapted representations.
    """
    return X + np.maximum(X @ W_down, 0.0) @ W_up


def lora_projection(X, W, A, B, alpha):
    """A linear projection whose weight is adapted by LoRA.

    X: (n, d_in); W: (d_in, d_out) frozen weight; A: (d_in, r) and B: (r, d_out) the low-rank
    factors (r = A.shape[1]); alpha: the LoRA scaling hyperparameter (lora_alpha).
    Returns the (n, d_out) projection of X by the adapted weight.
    """
    r = A.shape[1]
    return X @ W + (alpha / r) * (X @ A @ B)


ANSWER_2_1 = """
Parameter-efficient fine-tuning adapts a large pretrained language model to a downstream task or a new language without updating all of its weights. The pretrained weights stay frozen; only a small number of new or selected trainable parameters (adapters, LoRA matrices, prefix vectors), often well below 1% of the model, are trained for the task.
"""


ANSWER_2_2 = """
Storage and memory: one frozen copy of the model is shared and each task only stores a small checkpoint of a few megabytes; optimizer state and GPU memory shrink too. Training is cheaper and faster because gradients are needed only for the few trainable parameters. Keeping the pretrained weights frozen reduces overfitting on small datasets and avoids catastrophic forgetting. PEFT modules are modular: they can be swapped, shared, reused and composed, e.g. language and task adapters for cross-lingual transfer as in MAD-X.
"""


ANSWER_2_3 = """
PEFT can underperform full fine-tuning, especially when the task is far from pretraining, because the limited capacity of a few parameters is less expressive. Some methods add inference latency: adapters add extra layers, and prefix-tuning lengthens the sequence and uses up context length. PEFT also adds new hyperparameters (rank, bottleneck size, prefix length) to which results are sensitive, and training can converge more slowly or be unstable.
"""


ANSWER_3_1 = """
LoRA reparameterises the weight update of existing projection matrices as a low-rank product: W becomes W + (alpha/r) A B, so the representations change through modified weights. Prefix-tuning leaves all weights untouched and prepends trainable prefix vectors as extra keys and values in every attention layer, so tokens change only through what they attend to. Adapters insert new bottleneck layers (down-projection, nonlinearity, up-projection with a residual connection) after the feed-forward or attention sublayer, transforming the hidden representations directly.
"""


ANSWER_3_2 = """
LoRA is easy to implement: it wraps existing linear layers such as W_q and W_v with two small matrices and needs no architecture change; the peft library does it in a few lines and the rank r is the main choice. Prefix-tuning is fiddly: the prefix length matters, training is unstable without a reparameterisation through an MLP, and the prefixes must be injected as past_key_values. Adapters modify the architecture and forward pass: one must choose the placement and bottleneck size, though the adapters library (AdapterHub) makes inserting them simple.
"""


ANSWER_3_3 = """
LoRA can be merged into the frozen weights after training (W + (alpha/r) A B), so inference has no additional latency at all. Prefix-tuning makes attention longer: every layer attends over extra prefix keys, which costs computation and reduces the usable sequence length of the context window. Adapters add extra layers that run sequentially in every block, which adds latency and cannot be merged into the existing weights, although the overhead is small.
"""


ANSWER_4_3D = """
Prefix-tuning changes only the attention: p trainable prefix keys and values are prepended to the keys and values computed from the tokens, so every token also attends to the prefix; queries and the number of output rows stay the same. A bottleneck adapter after the feed-forward layer applies a down-projection, ReLU and up-projection with its own skip connection to the feed-forward output before the residual is added. LoRA adds a scaled low-rank term (alpha / r) X A B to the projections with W_q, W_k and W_v, which is the same as using the merged weight W + (alpha / r) A B.
"""
