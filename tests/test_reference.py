"""The reference of Exercise 1 reproduces the sheet and has the properties of exercise-01.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.assignment import load_assignment

FOLDER = Path(__file__).resolve().parents[1] / "reference" / "ex01"
SHEET_ATOL = 2e-3  # the sheet prints rounded inputs and results from unrounded ones
PROPERTY = settings(max_examples=30, deadline=None)


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(FOLDER)


@pytest.fixture(scope="module")
def ref(assignment):
    return assignment.reference


@pytest.fixture(scope="module")
def sheet(assignment):
    return assignment.cases_module


def _layer(sheet):
    return sheet.SHEET_H, sheet.SHEET_W_Q, sheet.SHEET_W_K, sheet.SHEET_W_V, sheet.SHEET_W_1, sheet.SHEET_W_2


def test_projection_matches_the_sheet(ref, sheet):
    projected = ref.project(sheet.SHEET_W_DE, sheet.SHEET_W_DE_EN)
    np.testing.assert_allclose(projected, sheet.SHEET_PROJECTION, atol=SHEET_ATOL, rtol=0)


def test_loss_matches_the_sheet(ref, sheet):
    projected = ref.project(sheet.SHEET_W_DE, sheet.SHEET_W_DE_EN)
    assert ref.projection_loss(projected, sheet.SHEET_W_EN) == pytest.approx(sheet.SHEET_LOSS, abs=SHEET_ATOL)
    assert ref.projection_loss(sheet.SHEET_PROJECTION, sheet.SHEET_W_EN) == pytest.approx(sheet.SHEET_LOSS, abs=SHEET_ATOL)


def test_least_squares_alternative_gives_the_literature_value(assignment, sheet):
    variants = _variants(assignment)
    projected = assignment.reference.project(sheet.SHEET_W_DE, sheet.SHEET_W_DE_EN)
    assert variants.projection_loss__squared(projected, sheet.SHEET_W_EN) == pytest.approx(52.71, abs=0.01)


@pytest.mark.parametrize("causal, z_name, out_name, layer", [
    (False, "SHEET_ENCODER_Z", "SHEET_ENCODER_OUT", "encoder_layer"),
    (True, "SHEET_DECODER_Z", "SHEET_DECODER_OUT", "decoder_layer"),
])
def test_layers_match_the_sheet(ref, sheet, causal, z_name, out_name, layer):
    H, W_q, W_k, W_v, W_1, W_2 = _layer(sheet)
    np.testing.assert_allclose(ref.self_attention(H, W_q, W_k, W_v, causal=causal), getattr(sheet, z_name),
                               atol=SHEET_ATOL, rtol=0)
    np.testing.assert_allclose(getattr(ref, layer)(H, W_q, W_k, W_v, W_1, W_2), getattr(sheet, out_name),
                               atol=SHEET_ATOL, rtol=0)
    np.testing.assert_allclose(ref.transformer_layer(H, W_q, W_k, W_v, W_1, W_2, causal=causal),
                               getattr(sheet, out_name), atol=SHEET_ATOL, rtol=0)


def _variants(assignment):
    import sys

    return sys.modules[assignment.reference.__name__.rpartition(".")[0] + ".variants"]


# --------------------------------------------------------------------------- properties

shapes = st.fixed_dictionaries({
    "n": st.integers(1, 8), "d": st.integers(1, 6), "d_k": st.integers(1, 6), "d_ff": st.integers(1, 8),
    "p": st.integers(1, 4), "m": st.integers(1, 4), "r": st.integers(1, 4), "seed": st.integers(0, 2**32 - 1),
    "causal": st.booleans(),
})


def _random_layer(s):
    rng = np.random.default_rng(s["seed"])
    n, d, d_k, d_ff = s["n"], s["d"], s["d_k"], s["d_ff"]
    return rng, (rng.normal(size=(n, d)), rng.normal(size=(d, d_k)), rng.normal(size=(d, d_k)),
                 rng.normal(size=(d, d)), rng.normal(size=(d, d_ff)), rng.normal(size=(d_ff, d)))


@PROPERTY
@given(shapes)
def test_lora_with_zero_b_equals_the_base_layer(ref, s):
    rng, layer = _random_layer(s)
    d, d_k, r = s["d"], s["d_k"], s["r"]
    lora = {"q": (rng.normal(size=(d, r)), np.zeros((r, d_k))), "k": (rng.normal(size=(d, r)), np.zeros((r, d_k))),
            "v": (rng.normal(size=(d, r)), np.zeros((r, d)))}
    np.testing.assert_allclose(ref.transformer_layer(*layer, causal=s["causal"], lora=lora, lora_alpha=7.0),
                               ref.transformer_layer(*layer, causal=s["causal"]), rtol=1e-9, atol=1e-9)
    X, W = layer[0], layer[1]
    np.testing.assert_array_equal(ref.lora_projection(X, W, lora["q"][0], lora["q"][1], 3.0), X @ W)


@PROPERTY
@given(shapes, st.floats(0.5, 32.0))
def test_merged_and_unmerged_lora_agree(ref, s, alpha):
    rng, (H, W_q, *_rest) = _random_layer(s)
    A, B = rng.normal(size=(s["d"], s["r"])), rng.normal(size=(s["r"], s["d_k"]))
    merged = W_q + (alpha / s["r"]) * A @ B
    np.testing.assert_allclose(ref.lora_projection(H, W_q, A, B, alpha), H @ merged, rtol=1e-9, atol=1e-9)


@PROPERTY
@given(shapes)
def test_adapter_with_zero_up_projection_equals_the_base_layer(ref, s):
    rng, layer = _random_layer(s)
    adapter = (rng.normal(size=(s["d"], s["m"])), np.zeros((s["m"], s["d"])))
    np.testing.assert_array_equal(ref.bottleneck_adapter(layer[0], *adapter), layer[0])
    np.testing.assert_allclose(ref.transformer_layer(*layer, causal=s["causal"], adapter=adapter),
                               ref.transformer_layer(*layer, causal=s["causal"]), rtol=1e-12, atol=1e-12)


@PROPERTY
@given(shapes)
def test_empty_prefix_equals_plain_attention(ref, s):
    _, (H, W_q, W_k, W_v, *_rest) = _random_layer(s)
    P_k, P_v = np.zeros((0, s["d_k"])), np.zeros((0, s["d"]))
    np.testing.assert_allclose(ref.prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=s["causal"]),
                               ref.self_attention(H, W_q, W_k, W_v, causal=s["causal"]), rtol=1e-12, atol=1e-12)


@PROPERTY
@given(shapes)
def test_prefix_is_seen_by_every_token(ref, s):
    rng, (H, W_q, W_k, W_v, *_rest) = _random_layer(s)
    P_k, P_v = rng.normal(size=(s["p"], s["d_k"])), rng.normal(size=(s["p"], s["d"]))
    out = ref.prefix_self_attention(H, W_q, W_k, W_v, P_k, P_v, causal=True)
    assert out.shape == (s["n"], s["d"]) and np.all(np.isfinite(out))
    # Token 0 sees the prefix and itself only: attention over p + 1 positions by hand.
    keys, values = np.vstack([P_k, H[:1] @ W_k]), np.vstack([P_v, H[:1] @ W_v])
    scores = (H[:1] @ W_q) @ keys.T / np.sqrt(s["d_k"])
    weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(out[0], (weights @ values)[0], rtol=1e-9, atol=1e-9)


@PROPERTY
@given(shapes)
def test_transformer_layer_without_peft_equals_encoder_and_decoder(ref, s):
    _, layer = _random_layer(s)
    np.testing.assert_allclose(ref.transformer_layer(*layer), ref.encoder_layer(*layer), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.transformer_layer(*layer, causal=True), ref.decoder_layer(*layer),
                               rtol=1e-12, atol=1e-12)


@PROPERTY
@given(st.integers(1, 8), st.integers(1, 8), st.floats(-1e3, 1e3), st.integers(0, 2**32 - 1))
def test_softmax_rows_sum_to_one_without_overflow(ref, rows, cols, centre, seed):
    x = centre + np.random.default_rng(seed).normal(0.0, 5.0, size=(rows, cols))
    with np.errstate(all="raise"):
        y = ref.softmax(x)
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ref.softmax(x + 1e3), y, rtol=1e-9, atol=1e-15)


@PROPERTY
@given(shapes)
def test_causal_first_token_attends_only_to_itself(ref, s):
    _, (H, W_q, W_k, W_v, *_rest) = _random_layer(s)
    Z = ref.self_attention(H, W_q, W_k, W_v, causal=True)
    np.testing.assert_allclose(Z[0], (H @ W_v)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Z[-1], ref.self_attention(H, W_q, W_k, W_v)[-1], rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(Z))


def test_reference_functions_are_self_contained(assignment):
    """Each function's source alone, with numpy and the other API functions by name, works."""
    import inspect

    namespace: dict = {}
    exec("import numpy as np", namespace)
    for name in assignment.functions:
        exec(inspect.getsource(getattr(assignment.reference, name)), namespace)
    for prepared in assignment.prepared_cases(include_hidden=False):
        got = namespace[prepared.case.function](*prepared.case.args, **prepared.case.kwargs)
        np.testing.assert_allclose(np.asarray(got, dtype=float), prepared.expected, rtol=1e-12, atol=1e-12)
