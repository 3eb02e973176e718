"""Cases of Exercise 1: the sheet's worked example and small fixed cases (public), seeded random
cases with other shapes (hidden).

Public cases may ship to students with their expected values (``grader release``); hidden cases are
for the instructor's grading only and are rebuilt from the assignment's seed, so a submission that
hard-codes the sheet's printed results passes the public cases and fails the hidden ones.
"""

from __future__ import annotations

import numpy as np

from grader.assignment import Case

# --------------------------------------------------------------------------- the sheet's numbers

SHEET_W_DE = np.array([[-0.7085, -0.8577, 1.3898],
                       [-0.4311, -1.6566, -1.9603],
                       [1.5719, -0.5320, -0.7148]])
SHEET_W_EN = np.array([[0.5787, -1.4529, -0.1379],
                       [0.3200, 0.4139, 1.7434],
                       [0.4766, 1.5077, -0.0707]])
SHEET_W_DE_EN = np.array([[-0.8262, -0.2042, -1.8096],
                          [-0.7249, -1.2263, -0.5002],
                          [-0.8531, -1.3717, 0.9136]])
SHEET_PROJECTION = np.array([[0.0216, -0.7099, 2.9810],
                             [3.2295, 4.8086, -0.1822],
                             [-0.3033, 1.3120, -3.2315]])
SHEET_LOSS = 12.1270

SHEET_H = np.array([[0.8109, -0.9391, 0.2519],
                    [2.1968, 0.4785, 1.5207],
                    [-0.3264, 0.1585, 0.8469]])
SHEET_W_Q = np.array([[0.8571, 0.1942, -1.1185],
                      [1.6184, -0.2665, -0.9808],
                      [-1.2820, -0.1892, 0.7269]])
SHEET_W_K = np.array([[0.2176, -0.2462, 0.0557],
                      [0.6926, -2.0236, -0.2968],
                      [-0.6658, -2.5785, -0.4534]])
SHEET_W_V = np.array([[-0.2016, 1.4234, -0.1733],
                      [1.3098, -0.4815, 0.0123],
                      [0.1350, 0.3998, 0.4573]])
SHEET_W_1 = np.array([[0.5325, 0.7081, -1.1454],
                      [0.5511, 0.6274, -0.8078],
                      [1.0224, 0.4148, -0.4800]])
SHEET_W_2 = np.array([[-1.3081, 1.9878, 2.6332],
                      [2.6049, 0.9369, -0.9614],
                      [0.2293, 0.3262, 0.7968]])
SHEET_ENCODER_Z = np.array([[-0.7098, 1.4047, 0.1288],
                            [0.1002, 1.9549, 0.3040],
                            [-0.1147, 1.7538, 0.2594]])
SHEET_ENCODER_OUT = np.array([[0.5448, 2.3451, 1.7216],
                              [6.6879, 14.9026, 9.7301],
                              [0.5152, 7.0498, 4.9465]])
SHEET_DECODER_Z = np.array([[-1.3596, 1.7072, -0.0369],
                            [-0.0467, 3.0566, 0.2315],
                            [-0.1147, 1.7538, 0.2594]])
SHEET_DECODER_OUT = np.array([[-0.5321, 1.6367, 0.9634],
                              [7.3975, 17.4307, 10.3197],
                              [0.5152, 7.0499, 4.9466]])


def _sheet_layer() -> tuple:
    """The sheet's H and the five weight matrices of its Transformer layer, fresh copies."""
    return tuple(m.copy() for m in (SHEET_H, SHEET_W_Q, SHEET_W_K, SHEET_W_V, SHEET_W_1, SHEET_W_2))


def _a(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


# Small fixed matrices for 4.3: d = 4 tokens wide, d_k = 2, to catch √d vs √d_k and shape slips.
_SMALL_H = _a([[0.5, -1.0, 0.25, 2.0],
               [1.5, 0.0, -0.5, 1.0],
               [-0.75, 0.5, 1.0, -0.25]])
_SMALL_W_Q = _a([[0.2, -0.4], [0.6, 0.1], [-0.3, 0.8], [0.5, 0.5]])
_SMALL_W_K = _a([[-0.5, 0.3], [0.4, 0.9], [0.7, -0.2], [0.1, 0.6]])
_SMALL_W_V = _a([[0.3, 0.0, -0.6, 0.2], [-0.1, 0.5, 0.4, 0.0],
                 [0.8, -0.3, 0.1, 0.6], [0.0, 0.2, -0.4, 0.9]])
_SMALL_W_1 = _a([[0.5, -0.2, 0.3, 0.1, -0.6], [0.1, 0.4, -0.5, 0.2, 0.3],
                 [-0.3, 0.6, 0.2, -0.4, 0.5], [0.2, 0.1, 0.4, 0.3, -0.1]])
_SMALL_W_2 = _a([[0.4, -0.3, 0.2, 0.1], [-0.2, 0.5, 0.1, -0.4], [0.3, 0.2, -0.5, 0.6],
                 [0.1, -0.1, 0.3, 0.2], [-0.4, 0.3, 0.2, -0.2]])


def _small_layer() -> tuple:
    return tuple(m.copy() for m in (_SMALL_H, _SMALL_W_Q, _SMALL_W_K, _SMALL_W_V, _SMALL_W_1, _SMALL_W_2))


# --------------------------------------------------------------------------- public cases


def public_cases() -> list[Case]:
    """The sheet's worked example, plus small fixed cases where the sheet prints no numbers."""
    H, W_q, W_k, W_v, W_1, W_2 = _sheet_layer()
    sheet_z_res = SHEET_H + SHEET_ENCODER_Z  # Z' = H + Z, the feed-forward input of the sheet's encoder
    sheet_prefix = (_a([[0.5, -0.25, 1.0], [-1.0, 0.75, 0.0]]), _a([[1.0, 0.5, -0.5], [0.0, -1.0, 2.0]]))
    sheet_adapter = (_a([[0.5, -0.25], [0.25, 0.5], [-0.5, 0.125]]), _a([[0.2, -0.1, 0.3], [-0.3, 0.25, 0.1]]))
    sheet_lora_qv = {"q": (_a([[0.5], [-0.25], [1.0]]), _a([[0.2, -0.4, 0.1]])),
                     "v": (_a([[-0.5], [0.75], [0.25]]), _a([[0.3, 0.1, -0.2]]))}
    sheet_lora_qkv = {"q": (_a([[0.5, 0.1], [-0.25, 0.2], [1.0, -0.3]]), _a([[0.2, -0.4, 0.1], [0.1, 0.0, -0.2]])),
                      "k": (_a([[0.3, -0.2], [0.0, 0.4], [-0.6, 0.1]]), _a([[-0.1, 0.3, 0.2], [0.4, -0.2, 0.0]])),
                      "v": (_a([[-0.5, 0.2], [0.75, 0.0], [0.25, -0.4]]), _a([[0.3, 0.1, -0.2], [0.0, 0.2, 0.1]]))}
    sH, sW_q, sW_k, sW_v, sW_1, sW_2 = _small_layer()
    small_prefix = (_a([[0.4, -0.6], [1.0, 0.2]]), _a([[0.5, -0.5, 1.0, 0.0], [-0.25, 0.75, 0.0, 0.5]]))
    small_lora_q = {"q": (_a([[0.2], [-0.1], [0.4], [0.3]]), _a([[0.5, -0.5]]))}

    def sheet(*extra):
        return tuple(m.copy() for m in (H, W_q, W_k, W_v, W_1, W_2)) + extra

    return [
        Case("4.1a", "project", (SHEET_W_DE.copy(), SHEET_W_DE_EN.copy()), id="4.1a/sheet",
             description="the sheet: project W_de into the English space with W_de→en"),
        Case("4.1b", "projection_loss", (SHEET_PROJECTION.copy(), SHEET_W_EN.copy()), id="4.1b/sheet",
             description="the sheet: loss between the printed projection and W_en (12.1270)"),
        Case("4.2a", "softmax", (_a([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 2.0]]),), id="4.2a/small",
             description="softmax of a 3×3 score matrix, row by row"),
        Case("4.2a", "softmax", (_a([[1000.0, 1000.5, 999.25, 1002.0], [0.5, -1.0, 2.0, 0.0]]),), id="4.2a/large",
             description="a row with values around 1e3 (must not overflow) and an ordinary row"),
        Case("4.2b", "self_attention", sheet()[:4], id="4.2b/sheet",
             description="the sheet's encoder: output Z of self-attention"),
        Case("4.2b", "self_attention", sheet()[:4], {"causal": True}, id="4.2b/sheet-causal",
             description="the sheet's decoder: output Z of causal self-attention"),
        Case("4.2b", "self_attention", (sH, sW_q, sW_k, sW_v), {"causal": False}, id="4.2b/small",
             description="3 tokens, d = 4, d_k = 2 (d ≠ d_k)"),
        Case("4.2c", "feed_forward", (sheet_z_res, W_1.copy(), W_2.copy()), id="4.2c/sheet",
             description="the sheet's encoder: feed-forward layer applied to Z' = H + Z"),
        Case("4.2c", "feed_forward", (_a([[1.0, -2.0, 0.5], [0.0, 1.5, -1.0]]), sW_1[:3, :4].copy(), sW_2[:4, :2].copy()),
             id="4.2c/rectangular", description="2 tokens, W_1 of shape (3, 4), W_2 of shape (4, 2)"),
        Case("4.2d", "encoder_layer", sheet(), id="4.2d/sheet", description="the sheet: encoder-only output"),
        Case("4.2e", "decoder_layer", sheet(), id="4.2e/sheet", description="the sheet: decoder-only output"),
        Case("4.3a", "prefix_self_attention", sheet()[:4] + sheet_prefix, id="4.3a/sheet-prefix",
             description="the sheet's attention with p = 2 prefix keys and values"),
        Case("4.3a", "prefix_self_attention", (sH, sW_q, sW_k, sW_v) + small_prefix, {"causal": True},
             id="4.3a/small-causal", description="causal, p = 2, d = 4, d_k = 2"),
        Case("4.3a", "transformer_layer", sheet(), {"prefix": sheet_prefix}, id="4.3a/sheet-encoder",
             description="the sheet's encoder layer with prefix-tuning (p = 2)"),
        Case("4.3a", "transformer_layer", sheet(), {"causal": True, "prefix": sheet_prefix},
             id="4.3a/sheet-decoder", description="the sheet's decoder layer with prefix-tuning (p = 2)"),
        Case("4.3b", "bottleneck_adapter", (sheet_z_res.copy(),) + sheet_adapter, id="4.3b/small",
             description="a bottleneck adapter with m = 2 on the sheet's Z'"),
        Case("4.3b", "transformer_layer", sheet(), {"adapter": sheet_adapter}, id="4.3b/sheet-encoder",
             description="the sheet's encoder layer with a bottleneck adapter (m = 2)"),
        Case("4.3b", "transformer_layer", sheet(), {"causal": True, "adapter": sheet_adapter},
             id="4.3b/sheet-decoder", description="the sheet's decoder layer with a bottleneck adapter (m = 2)"),
        Case("4.3b", "transformer_layer", sheet(),
             {"causal": True, "prefix": sheet_prefix, "adapter": sheet_adapter, "lora": sheet_lora_qv,
              "lora_alpha": 4.0},
             id="4.3b/sheet-all-three", description="the sheet's decoder layer with prefix, adapter and LoRA on q, v"),
        Case("4.3c", "lora_projection", (SHEET_H.copy(), SHEET_W_Q.copy()) + sheet_lora_qv["q"] + (2.0,),
             id="4.3c/square", description="LoRA on the sheet's W_q, r = 1, alpha = 2"),
        Case("4.3c", "lora_projection", (sH, sW_q) + small_lora_q["q"] + (8.0,), id="4.3c/rectangular",
             description="W of shape (4, 2), r = 1, alpha = 8"),
        Case("4.3c", "transformer_layer", sheet(), {"lora": sheet_lora_qv, "lora_alpha": 2.0},
             id="4.3c/sheet-encoder-qv", description="the sheet's encoder layer, LoRA (r = 1) on W_q and W_v"),
        Case("4.3c", "transformer_layer", sheet(), {"causal": True, "lora": sheet_lora_qkv, "lora_alpha": 8.0},
             id="4.3c/sheet-decoder-qkv", description="the sheet's decoder layer, LoRA (r = 2) on W_q, W_k, W_v"),
        Case("4.3c", "transformer_layer", (sH, sW_q, sW_k, sW_v, sW_1, sW_2),
             {"prefix": small_prefix, "lora": small_lora_q, "lora_alpha": 3.0},
             id="4.3c/small-prefix-lora", description="d = 4, d_k = 2: LoRA on W_q together with a prefix"),
    ]


# --------------------------------------------------------------------------- hidden cases


def _matrix(rng: np.random.Generator, rows: int, cols: int, scale: float = 1.0) -> np.ndarray:
    """Random entries rounded to 4 decimals, like the sheet's."""
    return np.round(rng.normal(0.0, scale, size=(rows, cols)), 4)


def _layer(rng: np.random.Generator, n: int, d: int, d_k: int, d_ff: int) -> tuple:
    """H and W_q, W_k, W_v, W_1, W_2 for a layer of width d, key width d_k, inner width d_ff."""
    scale = 1.0 / np.sqrt(d)
    return (_matrix(rng, n, d), _matrix(rng, d, d_k, scale), _matrix(rng, d, d_k, scale),
            _matrix(rng, d, d, scale), _matrix(rng, d, d_ff, scale), _matrix(rng, d_ff, d, 1.0 / np.sqrt(d_ff)))


def _lora(rng: np.random.Generator, d: int, widths: dict[str, int], r: int) -> dict:
    return {name: (_matrix(rng, d, r, 0.5), _matrix(rng, r, width, 0.5)) for name, width in widths.items()}


def hidden_cases(seed: int) -> list[Case]:
    """Random cases with other shapes, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    def add(question, function, args, kwargs=None, description=""):
        number = sum(c.function == function for c in cases) + 1
        cases.append(Case(question, function, tuple(args), dict(kwargs or {}),
                          id=f"{question}/hidden-{function}-{number}", description=description, public=False))

    for n, d_src, d_tgt in ((1, 3, 3), (4, 5, 3), (6, 2, 4), (8, 4, 4)):
        add("4.1a", "project", (_matrix(rng, n, d_src), _matrix(rng, d_src, d_tgt)), description=f"n={n}, W {d_src}×{d_tgt}")
    for n, d in ((1, 3), (3, 5), (5, 2), (8, 4)):
        add("4.1b", "projection_loss", (_matrix(rng, n, d, 2.0), _matrix(rng, n, d)), description=f"n={n}, d={d}")

    # Softmax inputs around 1e3 are multiples of 1/64, so float32 holds them exactly.
    for rows, cols, centre in ((1, 5, 1000.0), (3, 4, 0.0), (4, 6, -1000.0), (8, 3, 1000.0), (2, 7, 5.0)):
        x = centre + np.round(rng.normal(0.0, 3.0, size=(rows, cols)) * 64) / 64
        add("4.2a", "softmax", (x,), description=f"{rows}×{cols}, values around {centre:g}")

    for n, d, d_k, d_v, causal in ((1, 3, 2, 3, False), (4, 5, 3, 2, True), (6, 4, 2, 4, False),
                                   (8, 6, 4, 3, True), (5, 3, 5, 4, True)):
        scale = 1.0 / np.sqrt(d)
        args = (_matrix(rng, n, d), _matrix(rng, d, d_k, scale), _matrix(rng, d, d_k, scale), _matrix(rng, d, d_v, scale))
        add("4.2b", "self_attention", args, {"causal": causal}, f"n={n}, d={d}, d_k={d_k}, d_v={d_v}, causal={causal}")

    for n, d, d_ff, d_out in ((1, 3, 4, 3), (4, 4, 8, 4), (7, 5, 3, 2), (3, 2, 6, 5)):
        args = (_matrix(rng, n, d), _matrix(rng, d, d_ff, 0.7), _matrix(rng, d_ff, d_out, 0.7))
        add("4.2c", "feed_forward", args, description=f"n={n}, W_1 {d}×{d_ff}, W_2 {d_ff}×{d_out}")

    for question, function in (("4.2d", "encoder_layer"), ("4.2e", "decoder_layer")):
        for n, d, d_k, d_ff in ((1, 3, 2, 4), (4, 4, 2, 8), (6, 5, 3, 4), (8, 6, 4, 12)):
            add(question, function, _layer(rng, n, d, d_k, d_ff), description=f"n={n}, d={d}, d_k={d_k}, d_ff={d_ff}")

    for n, d, d_k, p, causal in ((1, 3, 3, 1, True), (4, 4, 2, 2, False), (6, 5, 3, 3, True), (8, 4, 4, 2, True)):
        H, W_q, W_k, W_v = _layer(rng, n, d, d_k, 1)[:4]
        args = (H, W_q, W_k, W_v, _matrix(rng, p, d_k), _matrix(rng, p, d))
        add("4.3a", "prefix_self_attention", args, {"causal": causal}, f"n={n}, d={d}, d_k={d_k}, p={p}, causal={causal}")
    for n, d, d_k, d_ff, p, causal in ((3, 4, 2, 6, 2, True), (5, 3, 3, 5, 1, False), (7, 5, 3, 8, 3, True)):
        prefix = (_matrix(rng, p, d_k), _matrix(rng, p, d))
        add("4.3a", "transformer_layer", _layer(rng, n, d, d_k, d_ff), {"causal": causal, "prefix": prefix},
            f"prefix p={p}, n={n}, d={d}, d_k={d_k}, causal={causal}")

    for n, d, m in ((1, 3, 1), (4, 4, 2), (6, 6, 3), (8, 5, 2)):
        add("4.3b", "bottleneck_adapter", (_matrix(rng, n, d), _matrix(rng, d, m, 0.7), _matrix(rng, m, d, 0.7)),
            description=f"n={n}, d={d}, m={m}")
    for n, d, d_k, d_ff, m, causal in ((2, 4, 2, 6, 2, False), (6, 5, 3, 8, 2, True), (8, 3, 2, 4, 1, True)):
        adapter = (_matrix(rng, d, m, 0.7), _matrix(rng, m, d, 0.7))
        add("4.3b", "transformer_layer", _layer(rng, n, d, d_k, d_ff), {"causal": causal, "adapter": adapter},
            f"adapter m={m}, n={n}, d={d}, d_k={d_k}, causal={causal}")
    n, d, d_k, d_ff = 5, 4, 2, 6
    add("4.3b", "transformer_layer", _layer(rng, n, d, d_k, d_ff),
        {"causal": True, "prefix": (_matrix(rng, 2, d_k), _matrix(rng, 2, d)),
         "adapter": (_matrix(rng, d, 2, 0.7), _matrix(rng, 2, d, 0.7)),
         "lora": _lora(rng, d, {"q": d_k, "v": d}, 2), "lora_alpha": 6.0},
        "prefix p=2, adapter m=2 and LoRA r=2 on q, v; n=5, d=4, d_k=2, causal")

    for n, d_in, d_out, r, alpha in ((1, 3, 3, 1, 4.0), (4, 5, 5, 2, 16.0), (6, 4, 2, 3, 1.0), (8, 6, 3, 2, 8.0)):
        args = (_matrix(rng, n, d_in), _matrix(rng, d_in, d_out), _matrix(rng, d_in, r, 0.5), _matrix(rng, r, d_out, 0.5), alpha)
        add("4.3c", "lora_projection", args, description=f"n={n}, W {d_in}×{d_out}, r={r}, alpha={alpha:g}")
    for n, d, d_k, d_ff, r, alpha, keys, causal in ((3, 4, 2, 6, 1, 2.0, "qv", False),
                                                     (6, 5, 3, 8, 2, 16.0, "qkv", True),
                                                     (8, 6, 4, 4, 3, 1.0, "k", True)):
        widths = {name: (d if name == "v" else d_k) for name in keys}
        add("4.3c", "transformer_layer", _layer(rng, n, d, d_k, d_ff),
            {"causal": causal, "lora": _lora(rng, d, widths, r), "lora_alpha": alpha},
            f"LoRA r={r}, alpha={alpha:g} on {', '.join(keys)}; n={n}, d={d}, d_k={d_k}, causal={causal}")
    n, d, d_k, d_ff = 4, 3, 2, 5
    add("4.3c", "transformer_layer", _layer(rng, n, d, d_k, d_ff),
        {"prefix": (_matrix(rng, 1, d_k), _matrix(rng, 1, d)), "lora": _lora(rng, d, {"k": d_k}, 1),
         "lora_alpha": 4.0}, "prefix p=1 and LoRA r=1 on k; n=4, d=3, d_k=2")
    return cases
