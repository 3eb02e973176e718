# Exercise 1, section 4, computed in float32 the way torch would (einsum, float32 throughout).
import numpy as np

f32 = np.float32


def _t(*arrays):
    return [np.asarray(a, dtype=f32) for a in arrays]


def project(X, W):
    X, W = _t(X, W)
    return np.einsum("nd,de->ne", X, W)


def projection_loss(X_proj, Y):
    X_proj, Y = _t(X_proj, Y)
    return np.sqrt(np.einsum("nd,nd->n", X_proj - Y, X_proj - Y)).sum()


def softmax(x):
    (x,) = _t(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / np.einsum("...j->...", e)[..., None]


def self_attention(H, W_q, W_k, W_v, causal=False):
    H, W_q, W_k, W_v = _t(H, W_q, W_k, W_v)
    Q, K, V = (np.einsum("nd,dk->nk", H, W) for W in (W_q, W_k, W_v))
    scores = np.einsum("ik,jk->ij", Q, K) / np.sqrt(f32(K.shape[1]))
    if causal:
        scores = np.where(np.tri(*scores.shape, dtype=bool), scores, f32(-np.inf))
    return np.einsum("ij,jv->iv", softmax(scores), V)


def feed_forward(X, W_1, W_2):
    X, W_1, W_2 = _t(X, W_1, W_2)
    return np.einsum("nf,fo->no", np.maximum(np.einsum("nd,df->nf", X, W_1), f32(0)), W_2)


def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    (H,) = _t(H)
    Zp = H + self_attention(H, W_q, W_k, W_v)
    return Zp + feed_forward(Zp, W_1, W_2)


def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    (H,) = _t(H)
    Zp = H + self_attention(H, W_q, W_k, W_v, causal=True)
    return Zp + feed_forward(Zp, W_1, W_2)


def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    H, W_q, W_k, W_v, P_k, P_v = _t(H, W_q, W_k, W_v, P_k, P_v)
    n, p = H.shape[0], P_k.shape[0]
    Q = np.einsum("nd,dk->nk", H, W_q)
    K = np.concatenate([P_k, np.einsum("nd,dk->nk", H, W_k)])
    V = np.concatenate([P_v, np.einsum("nd,dv->nv", H, W_v)])
    scores = np.einsum("ik,jk->ij", Q, K) / np.sqrt(f32(K.shape[1]))
    if causal:
        visible = np.concatenate([np.ones((n, p), dtype=bool), np.tri(n, dtype=bool)], axis=1)
        scores = np.where(visible, scores, f32(-np.inf))
    return np.einsum("ij,jv->iv", softmax(scores), V)


def bottleneck_adapter(X, W_down, W_up):
    X, W_down, W_up = _t(X, W_down, W_up)
    return X + np.einsum("nm,md->nd", np.maximum(np.einsum("nd,dm->nm", X, W_down), f32(0)), W_up)


def lora_projection(X, W, A, B, alpha):
    X, W, A, B = _t(X, W, A, B)
    return np.einsum("ni,io->no", X, W) + f32(alpha / A.shape[1]) * np.einsum("ni,ir,ro->no", X, A, B)


def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    (H,) = _t(H)
    W = dict(zip("qkv", _t(W_q, W_k, W_v)))
    for key, (A, B) in (lora or {}).items():
        A, B = _t(A, B)
        W[key] = W[key] + f32(lora_alpha / A.shape[1]) * (A @ B)
    if prefix is None:
        Z = self_attention(H, W["q"], W["k"], W["v"], causal=causal)
    else:
        Z = prefix_self_attention(H, W["q"], W["k"], W["v"], *prefix, causal=causal)
    Zp = H + Z
    F = feed_forward(Zp, W_1, W_2)
    if adapter is not None:
        F = bottleneck_adapter(F, *adapter)
    return Zp + F
