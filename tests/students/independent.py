# Exercise 1, section 4 -- written from the exercise sheet and its contract.
import numpy as np


def project(X, W):
    return np.matmul(X, W)


def projection_loss(X_proj, Y):
    return float(np.sqrt(((X_proj - Y) ** 2).sum(axis=1)).sum())


def softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def self_attention(H, W_q, W_k, W_v, causal=False):
    Q, K, V = H @ W_q, H @ W_k, H @ W_v
    d_k = K.shape[-1]
    A = Q @ K.T / np.sqrt(d_k)
    if causal:
        A = A + np.triu(np.full(A.shape, -np.inf), 1)
    return softmax(A) @ V


def feed_forward(X, W_1, W_2):
    return np.maximum(0, X @ W_1) @ W_2


def encoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    Z = self_attention(H, W_q, W_k, W_v)
    Zp = H + Z
    return Zp + feed_forward(Zp, W_1, W_2)


def decoder_layer(H, W_q, W_k, W_v, W_1, W_2):
    Z = self_attention(H, W_q, W_k, W_v, causal=True)
    Zp = H + Z
    return Zp + feed_forward(Zp, W_1, W_2)


def prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=False):
    n, p = H.shape[0], P_k.shape[0]
    Q = H @ W_q
    K = np.vstack([P_k, H @ W_k])
    V = np.vstack([P_v, H @ W_v])
    A = Q @ K.T / np.sqrt(K.shape[-1])
    if causal:
        mask = np.zeros((n, p + n))
        mask[:, p:] = np.triu(np.full((n, n), -np.inf), 1)
        A = A + mask
    return softmax(A) @ V


def bottleneck_adapter(X, W_down, W_up):
    return X + np.maximum(0, X @ W_down) @ W_up


def lora_projection(X, W, A, B, alpha):
    r = A.shape[1]
    return X @ W + alpha / r * (X @ A) @ B


def transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=False, prefix=None, adapter=None, lora=None,
                      lora_alpha=1.0):
    Ws = {"q": W_q, "k": W_k, "v": W_v}
    if lora:
        eye = np.eye(H.shape[1])
        for key, (A, B) in lora.items():
            Ws[key] = lora_projection(eye, Ws[key], A, B, lora_alpha)  # the merged weight
    if prefix is not None:
        Z = prefix_self_attention(H, Ws["q"], Ws["k"], Ws["v"], prefix[0], prefix[1], causal=causal)
    else:
        Z = self_attention(H, Ws["q"], Ws["k"], Ws["v"], causal=causal)
    Zp = H + Z
    F = feed_forward(Zp, W_1, W_2)
    if adapter is not None:
        F = bottleneck_adapter(F, adapter[0], adapter[1])
    return Zp + F
