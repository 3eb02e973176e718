"""Exercise 1 submission."""

import numpy as np


def project(X, W):
    """Project word embeddings from the source into the target embedding space.

    X: (n, d_src) array, one source-language word embedding per row.
    W: (d_src, d_tgt) array, the projection matrix.
    Returns the (n, d_tgt) array of projected embeddings, one row per word of X.
    """
    # rows are words
    result = np.dot(X, W)
    return result


def projection_loss(X_proj, Y):
    """Loss of a cross-lingual projection: the sum over word pairs of the Euclidean distance.

    X_proj: (n, d) array, the projected source embeddings; Y: (n, d) array, the target embeddings
    of the translations (row i of X_proj is paired with row i of Y).
    Returns one float: the sum over i of the Euclidean (L2) distance between X_proj[i] and Y[i].
    """
    delta = X_proj - Y
    distances = np.sqrt(np.sum(delta ** 2, axis=1))  # L2 norm per row
    return float(distances.sum())


def softmax(x):
    """Softmax along the last axis.

    x: array of any shape (in this exercise a 2-D matrix of scores, one row per query).
    Returns an array of the same shape whose entries along the last axis are positive and sum to 1.
    Must stay finite for large inputs (values around 1e3).
    """
    # numerically stable version
    shifted = x - x.max(axis=-1, keepdims=True)
    exps = np.exp(shifted)
    return exps / exps.sum(axis=-1, keepdims=True)


def _attend(queries, keys, values, allowed=None):
    """softmax(Q K^T / sqrt(d_k)) V, hiding the positions where visible is False."""
    logits = np.dot(queries, keys.T) / np.sqrt(keys.shape[1])
    if allowed is not None:
        logits = np.where(allowed, logits, -np.inf)
    return softmax(logits) @ values


def _make_mask(n, p=0):
    """(n, p + n) mask: every token sees the p prefix positions and the tokens up to itself."""
    allowed = np.ones((n, p + n), dtype=bool)
    allowed[:, p:] = np.tril(np.ones((n, n), dtype=bool))
    return allowed


def self_attention(H, W_q, W_k, W_v, causal=False):
    """Single-head scaled dot-product self-attention, without residual connection.

    H: (n, d) array, one token representation per row.
    W_q: (d, d_k), W_k: (d, d_k), W_v: (d, d_v) projection matrices for queries, keys and values.
    causal: if True, token i may attend only to tokens 0..i (decoder); otherwise to all tokens.
    Returns Z, the (n, d_v) output of the self-attention layer (one row per token).
    """
    queries, keys, values = H @ W_q, H @ W_k, H @ W_v
    allowed = _make_mask(H.shape[0]) if causal else None
    return _attend(queries, keys, values, allowed)


def feed_forward(X, W_1, W_2):
    """Position-wise feed-forward layer with ReLU and no biases.

    X: (n, d) array; W_1: (d, d_ff); W_2: (d_ff, d_out).
    Returns the (n, d_out) array, one row per row of X.
    """
    act = np.maximum(0, X @ W_1)  # relu activation
    return act @ W_2


def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    """One Transformer encoder layer (no LayerNorm, no biases, one head).

    H: (n, d) input from the previous layer; W_q, W_k: (d, d_k); W_v: (d, d); W_1: (d, d_ff);
    W_2: (d_ff, d). Self-attention over all tokens and the feed-forward layer, each with its
    residual connection.
    Returns the (n, d) output representations of the layer.
    """
    # reuse the general layer
    return transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False)


def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    """One Transformer decoder-only layer (no LayerNorm, no biases, one head).

    Same arguments and output as encoder_layer, but each token attends only to itself and the
    tokens before it (causal self-attention).
    Returns the (n, d) output representations of the layer.
    """
    return transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=True)


def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Self-attention with prefix-tuning: p trainable prefix keys and values prepended.

    H: (n, d); W_q, W_k: (d, d_k); W_v: (d, d_v) as in self_attention.
    P_k: (p, d_k) prefix keys and P_v: (p, d_v) prefix values, used as given (they are already
    keys and values, not token representations).
    causal: if True, the causal mask applies among the n tokens; every token always sees all
    p prefix positions.
    Returns the (n, d_v) output of the self-attention layer, one row per token (none for the prefix).
    """
    keys = np.vstack([P_k, H @ W_k])
    values = np.vstack([P_v, H @ W_v])
    allowed = _make_mask(H.shape[0], P_k.shape[0]) if causal else None
    return _attend(H @ W_q, keys, values, allowed)


def bottleneck_adapter(X, W_down, W_up):
    """Bottleneck adapter with ReLU and its inner skip connection.

    X: (n, d) array; W_down: (d, m) down-projection; W_up: (m, d) up-projection, m the bottleneck size.
    Returns the (n, d) adapted representations.
    """
    squeezed = np.maximum(0, X @ W_down)
    return X + squeezed @ W_up  # residual inside the adapter


def lora_projection(X, W, A, B, alpha):
    """A linear projection whose weight is adapted by LoRA.

    X: (n, d_in); W: (d_in, d_out) frozen weight; A: (d_in, r) and B: (r, d_out) the low-rank
    factors (r = A.shape[1]); alpha: the LoRA scaling hyperparameter (lora_alpha).
    Returns the (n, d_out) projection of X by the adapted weight.
    """
    r = A.shape[1]
    factor = alpha / r
    return X @ W + factor * ((X @ A) @ B)


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
    lora = lora or {}

    def proj(which, W):
        # use lora if given
        if which in lora:
            A, B = lora[which]
            return lora_projection(H, W, A, B, lora_alpha)
        return H @ W

    queries, keys, values = proj("q", W_q), proj("k", W_k), proj("v", W_v)
    num_prefix = 0
    if prefix is not None:
        P_k, P_v = prefix
        keys, values = np.vstack([P_k, keys]), np.vstack([P_v, values])
        num_prefix = P_k.shape[0]
    allowed = _make_mask(H.shape[0], num_prefix) if causal else None
    res = H + _attend(queries, keys, values, allowed)
    ff_out = feed_forward(res, W_1, W_2)
    if adapter is not None:
        ff_out = bottleneck_adapter(ff_out, *adapter)
    return res + ff_out


ANSWER_2_1 = """
The main idea of PEFT is to specialise a large pretrained language model for a downstream task (or a new language) while keeping almost all of its weights frozen. Instead of updating the millions of original parameters, we train only a small set of parameters: either a subset of the existing ones or newly added modules such as adapters, low-rank LoRA matrices or prefix vectors. In reality this is often less than one percent of the model, and the frozen backbone can be shared across many tasks.
"""


ANSWER_2_2 = """
PEFT saves a lot of resources. You store one base model and only small task-specific weights, so the disk usage is tiny. Tuning needs less GPU memory and gives faster training. There is less forgetting of the knowledge from pretraining, and you can share the trained modules with others.
"""


ANSWER_2_3 = """
Sometimes the quality is lower than with full fine-tuning. There are extra hyperparameters to choose, for example the rank in LoRA or the size of the adapter, and inference can have overhead when the extra modules are not merged.
"""


ANSWER_3_1 = """
LoRA changes the weights indirectly: a trained low-rank matrix is added to the frozen weight matrix. Prefix-tuning changes the input of attention: learned prefix vectors are added as extra keys and values. Adapters add new layers to the network that transform the hidden representation.
"""


ANSWER_3_2 = """
LoRA is the simplest of the three: you wrap existing linear layers (e.g. the query and value projections) with two small matrices, there is no architecture change, and with the peft library it needs a few lines of code; the main choice is the rank r. Prefix-tuning is harder to get right: training the prefix directly is unstable, so the original paper reparameterises it through an MLP, the prefix length must be tuned, and the prefixes have to be injected into every layer as past_key_values. Adapters change the forward pass of the model: one has to decide the placement and the bottleneck size, but libraries like AdapterHub make inserting them easy.
"""


ANSWER_3_3 = """
For inference LoRA is best, since the update can be merged and there is no overhead. Prefix-tuning needs extra tokens in every layer, so less sequence length remains for the input. Adapters cost additional layers and therefore some latency.
"""


ANSWER_4_3D = """
Prefix-tuning: before computing attention, the trainable prefix is concatenated to the keys and values, so the attention matrix gets more columns but the output keeps n rows. Adapter: the feed-forward output goes through a bottleneck (down, ReLU, up) plus skip connection before the residual. LoRA: W_q, W_k and W_v each get a low-rank addition (alpha/r) A B.
"""
