"""Other answers than the reference's for Exercise 1: accepted alternatives and known mistakes.

Each function imitates one student function and has its signature; it is named
``<function>__<variant>``, and assignment.toml lists it by that name with the note or hint the student
sees. Each mistake is declared once, on the function where it is made: the engine derives its
propagated form in every composite whose reference calls that function (grader.carry), so a mistake in
softmax also names itself in self_attention and the layers without being typed again here.

Like the reference, every function here is pastable alone into a cell: it calls only numpy, the
student API by name, and other functions of this module by name.
"""

import numpy as np

from .solution import bottleneck_adapter, feed_forward, lora_projection, prefix_self_attention, self_attention, softmax  # noqa: F401

# --------------------------------------------------------------------------- 4.1 projection


def projection_loss__squared(X_proj, Y):
    """Alternative: the literature's least-squares objective, the sum of squared distances."""
    return float(np.sum((X_proj - Y) ** 2))


def projection_loss__mean(X_proj, Y):
    """Mistake: the mean instead of the sum of the distances."""
    return float(np.mean(np.linalg.norm(X_proj - Y, axis=-1)))


def project__transposed_weight(X, W):
    """Mistake: the projection matrix used transposed."""
    return X @ W.T


# --------------------------------------------------------------------------- 4.2 softmax


def softmax__wrong_axis(x):
    """Mistake: normalised over the first axis (columns) instead of the last one (rows)."""
    shifted = x - np.max(x, axis=0, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=0, keepdims=True)


def softmax__no_max_subtraction(x):
    """Mistake: exponentials of the raw inputs, which overflow for inputs around 1e3."""
    with np.errstate(over="ignore", invalid="ignore"):
        exponentials = np.exp(x)
        return exponentials / np.sum(exponentials, axis=-1, keepdims=True)


def softmax__whole_matrix(x):
    """Mistake: normalised over all entries of the matrix at once, not row by row."""
    shifted = x - np.max(x)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials)


# --------------------------------------------------------------------------- 4.2 self-attention


def self_attention__unscaled(H, W_q, W_k, W_v, causal=False):
    """Mistake: scores QKᵀ not divided by √d_k."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, scores)
    return softmax(scores) @ V


def self_attention__scaled_by_sqrt_d(H, W_q, W_k, W_v, causal=False):
    """Mistake: scores divided by √d (the model width) instead of √d_k (the key width)."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(H.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, scores)
    return softmax(scores) @ V


def self_attention__transposed(H, W_q, W_k, W_v, causal=False):
    """Mistake: the output returned transposed, (d_v, n) instead of (n, d_v)."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, scores)
    return (softmax(scores) @ V).T


def self_attention__mask_reversed(H, W_q, W_k, W_v, causal=False):
    """Mistake: the causal mask hides the past instead of the future."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.tril(np.ones((n, n), dtype=bool), k=-1), -np.inf, scores)
    return softmax(scores) @ V


def self_attention__mask_without_diagonal(H, W_q, W_k, W_v, causal=False):
    """Mistake: the causal mask also hides each token from itself (row 0 sees nothing)."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=0), -np.inf, scores)
    with np.errstate(invalid="ignore"):
        return softmax(scores) @ V


def self_attention__mask_without_diagonal_1e9(H, W_q, W_k, W_v, causal=False):
    """Mistake: the causal mask hides each token from itself, written with -1e9 (row 0 attends uniformly)."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=0), -1e9, scores)
    return softmax(scores) @ V


def self_attention__divided_by_dk(H, W_q, W_k, W_v, causal=False):
    """Mistake: scores divided by d_k instead of √d_k."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / K.shape[1]
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, scores)
    return softmax(scores) @ V


def self_attention__causal_ignored(H, W_q, W_k, W_v, causal=False):
    """Mistake: the causal argument ignored, every token attends to all tokens."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    return softmax(Q @ K.T / np.sqrt(K.shape[1])) @ V


def self_attention__with_residual(H, W_q, W_k, W_v, causal=False):
    """Mistake: the residual connection added inside self_attention (H + Z); runs only when d_v = d."""
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n = scores.shape[0]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), k=1), -np.inf, scores)
    return H + softmax(scores) @ V


# --------------------------------------------------------------------------- 4.2 feed-forward


def feed_forward__relu_after_w2(X, W_1, W_2):
    """Mistake: the ReLU applied after W_2 instead of between W_1 and W_2."""
    return np.maximum(X @ W_1 @ W_2, 0.0)


def feed_forward__no_relu(X, W_1, W_2):
    """Mistake: no activation at all."""
    return X @ W_1 @ W_2


# --------------------------------------------------------------------------- 4.2 encoder / decoder layer


def encoder_layer__no_attention_residual(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the residual connection around self-attention is missing."""
    Z = self_attention(H, W_q, W_k, W_v, causal=False)
    return Z + feed_forward(Z, W_1, W_2)


def encoder_layer__no_ffn_residual(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the residual connection around the feed-forward layer is missing."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=False)
    return feed_forward(Z_res, W_1, W_2)


def encoder_layer__causal(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the encoder uses the causal mask of a decoder."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return Z_res + feed_forward(Z_res, W_1, W_2)


def encoder_layer__residual_twice(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the input H added again at the end (the attention residual counted twice)."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=False)
    return Z_res + feed_forward(Z_res, W_1, W_2) + H


def decoder_layer__residual_twice(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the input H added again at the end (the attention residual counted twice)."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return Z_res + feed_forward(Z_res, W_1, W_2) + H


def decoder_layer__no_mask(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: no causal mask at all (the decoder computes the encoder layer)."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=False)
    return Z_res + feed_forward(Z_res, W_1, W_2)


def decoder_layer__no_attention_residual(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the residual connection around self-attention is missing."""
    Z = self_attention(H, W_q, W_k, W_v, causal=True)
    return Z + feed_forward(Z, W_1, W_2)


def decoder_layer__no_ffn_residual(H, W_q, W_k, W_v, W_1, W_2):
    """Mistake: the residual connection around the feed-forward layer is missing."""
    Z_res = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return feed_forward(Z_res, W_1, W_2)


# --------------------------------------------------------------------------- 4.3a prefix-tuning


def prefix_self_attention__prefix_projected(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Mistake: the prefix treated as token states and multiplied by W_k and W_v."""
    Q = H @ W_q
    K = np.concatenate([P_k @ W_k, H @ W_k], axis=0)
    V = np.concatenate([P_v @ W_v, H @ W_v], axis=0)
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n, p = H.shape[0], P_k.shape[0]
        scores = np.where(np.triu(np.ones((n, n + p), dtype=bool), k=p + 1), -np.inf, scores)
    return softmax(scores) @ V


def prefix_self_attention__prefix_masked_causally(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Mistake: the causal mask laid over prefix and tokens together, so token i sees only i+1 positions."""
    Q = H @ W_q
    K = np.concatenate([P_k, H @ W_k], axis=0)
    V = np.concatenate([P_v, H @ W_v], axis=0)
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n, m = scores.shape
        scores = np.where(np.triu(np.ones((n, m), dtype=bool), k=1), -np.inf, scores)
    return softmax(scores) @ V


def prefix_self_attention__unscaled(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Mistake (propagated): scores not divided by √d_k."""
    Q = H @ W_q
    K = np.concatenate([P_k, H @ W_k], axis=0)
    V = np.concatenate([P_v, H @ W_v], axis=0)
    scores = Q @ K.T
    if causal:
        n, p = H.shape[0], P_k.shape[0]
        scores = np.where(np.triu(np.ones((n, n + p), dtype=bool), k=p + 1), -np.inf, scores)
    return softmax(scores) @ V


def prefix_self_attention__prefix_appended(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    """Mistake: the prefix appended after the tokens, so the causal mask hides it."""
    Q = H @ W_q
    K = np.concatenate([H @ W_k, P_k], axis=0)
    V = np.concatenate([H @ W_v, P_v], axis=0)
    scores = Q @ K.T / np.sqrt(K.shape[1])
    if causal:
        n, m = scores.shape
        scores = np.where(np.triu(np.ones((n, m), dtype=bool), k=1), -np.inf, scores)
    return softmax(scores) @ V


# --------------------------------------------------------------------------- 4.3b adapter


def bottleneck_adapter__no_skip(X, W_down, W_up):
    """Mistake: the adapter's inner skip connection is missing."""
    return np.maximum(X @ W_down, 0.0) @ W_up


def bottleneck_adapter__relu_after_up(X, W_down, W_up):
    """Mistake: the ReLU applied after the up-projection."""
    return X + np.maximum(X @ W_down @ W_up, 0.0)


# --------------------------------------------------------------------------- 4.3c LoRA


def lora_projection__no_scaling(X, W, A, B, alpha):
    """Mistake: the low-rank update not scaled by alpha / r."""
    return X @ W + X @ A @ B


def lora_projection__scaled_by_alpha(X, W, A, B, alpha):
    """Mistake: the update scaled by alpha instead of alpha / r."""
    return X @ W + alpha * (X @ A @ B)


def lora_projection__scaled_by_alpha_times_r(X, W, A, B, alpha):
    """Mistake: the update scaled by alpha · r instead of alpha / r."""
    r = A.shape[1]
    return X @ W + alpha * r * (X @ A @ B)


def lora_projection__ab_transposed(X, W, A, B, alpha):
    """Mistake: the low-rank product transposed, (A B)ᵀ (only runs for square W)."""
    r = A.shape[1]
    return X @ W + (alpha / r) * (X @ (A @ B).T)


def lora_projection__xwab(X, W, A, B, alpha):
    """Mistake: the factors chained after W (X W A B) instead of added to it (only runs for square W)."""
    r = A.shape[1]
    return (alpha / r) * (X @ W @ A @ B)


# --------------------------------------------------------------------------- 4.3 transformer_layer


def transformer_layer__pfeiffer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                                lora_alpha=1.0):
    """Alternative: the adapter after the feed-forward residual (Pfeiffer placement, no LayerNorm)."""
    weights = {"q": W_q, "k": W_k, "v": W_v}
    identity = np.eye(H.shape[1])
    for name, (A, B) in (lora or {}).items():
        weights[name] = lora_projection(identity, weights[name], A, B, lora_alpha)
    if prefix is None:
        Z = self_attention(H, weights["q"], weights["k"], weights["v"], causal=causal)
    else:
        Z = prefix_self_attention(H, weights["q"], weights["k"], weights["v"], prefix[0], prefix[1], causal=causal)
    Z_res = H + Z
    Y = Z_res + feed_forward(Z_res, W_1, W_2)
    if adapter is not None:
        Y = bottleneck_adapter(Y, adapter[0], adapter[1])
    return Y


def transformer_layer__adapter_inside_ffn_input(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None,
                                                lora=None, lora_alpha=1.0):
    """Mistake: the adapter applied to the feed-forward input, Z' + FF(adapter(Z'))."""
    weights = {"q": W_q, "k": W_k, "v": W_v}
    identity = np.eye(H.shape[1])
    for name, (A, B) in (lora or {}).items():
        weights[name] = lora_projection(identity, weights[name], A, B, lora_alpha)
    if prefix is None:
        Z = self_attention(H, weights["q"], weights["k"], weights["v"], causal=causal)
    else:
        Z = prefix_self_attention(H, weights["q"], weights["k"], weights["v"], prefix[0], prefix[1], causal=causal)
    Z_res = H + Z
    F_in = bottleneck_adapter(Z_res, adapter[0], adapter[1]) if adapter is not None else Z_res
    return Z_res + feed_forward(F_in, W_1, W_2)


def transformer_layer__adapter_on_attention(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None,
                                            lora=None, lora_alpha=1.0):
    """Mistake: the adapter applied to the attention output, Z' = H + adapter(Z)."""
    weights = {"q": W_q, "k": W_k, "v": W_v}
    identity = np.eye(H.shape[1])
    for name, (A, B) in (lora or {}).items():
        weights[name] = lora_projection(identity, weights[name], A, B, lora_alpha)
    if prefix is None:
        Z = self_attention(H, weights["q"], weights["k"], weights["v"], causal=causal)
    else:
        Z = prefix_self_attention(H, weights["q"], weights["k"], weights["v"], prefix[0], prefix[1], causal=causal)
    if adapter is not None:
        Z = bottleneck_adapter(Z, adapter[0], adapter[1])
    Z_res = H + Z
    return Z_res + feed_forward(Z_res, W_1, W_2)


def transformer_layer__adapter_before_ffn(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None,
                                          lora=None, lora_alpha=1.0):
    """Mistake: the adapter placed after attention, before the feed-forward layer."""
    weights = {"q": W_q, "k": W_k, "v": W_v}
    identity = np.eye(H.shape[1])
    for name, (A, B) in (lora or {}).items():
        weights[name] = lora_projection(identity, weights[name], A, B, lora_alpha)
    if prefix is None:
        Z = self_attention(H, weights["q"], weights["k"], weights["v"], causal=causal)
    else:
        Z = prefix_self_attention(H, weights["q"], weights["k"], weights["v"], prefix[0], prefix[1], causal=causal)
    Z_res = H + Z
    if adapter is not None:
        Z_res = bottleneck_adapter(Z_res, adapter[0], adapter[1])
    return Z_res + feed_forward(Z_res, W_1, W_2)
