"""The variants of Exercise 1: every one is listed, recognisable, and pastable like a student's code."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.assignment import load_assignment

FOLDER = Path(__file__).resolve().parents[1] / "reference" / "ex01"
_spec = importlib.util.spec_from_file_location("ex01_make_examples", FOLDER / "make_examples.py")
make_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_examples)

# Mistakes whose imitation needs particular shapes (a square W, d == d_k), as the student's code would.
SHAPE_LIMITED = {"project__transposed_weight", "lora_projection__xwab", "prefix_self_attention__prefix_projected",
                 "lora_projection__ab_transposed", "self_attention__with_residual"}
# The mistakes exercise-01.md names (and the brief's examples): each must exist.
REQUIRED = [
    "projection_loss__squared", "transformer_layer__pfeiffer",
    "self_attention__unscaled", "self_attention__scaled_by_sqrt_d", "softmax__wrong_axis",
    "softmax__no_max_subtraction", "self_attention__mask_reversed", "self_attention__mask_without_diagonal",
    "encoder_layer__no_attention_residual", "encoder_layer__no_ffn_residual", "decoder_layer__no_attention_residual",
    "decoder_layer__no_ffn_residual", "feed_forward__relu_after_w2", "self_attention__transposed",
    "lora_projection__no_scaling", "lora_projection__xwab", "prefix_self_attention__prefix_projected",
    "prefix_self_attention__prefix_masked_causally", "bottleneck_adapter__no_skip",
    "transformer_layer__adapter_before_ffn",
    # issue 10 §5: the forms students really write
    "self_attention__mask_without_diagonal_1e9", "transformer_layer__adapter_inside_ffn_input",
    "transformer_layer__adapter_on_attention", "encoder_layer__residual_twice", "decoder_layer__residual_twice",
    "softmax__whole_matrix", "self_attention__causal_ignored", "self_attention__with_residual",
    "lora_projection__scaled_by_alpha_times_r", "lora_projection__ab_transposed", "self_attention__divided_by_dk",
]
# Declared once on its building block, a mistake is derived by the engine for every composite that uses it.
PROPAGATED = [
    ("encoder_layer", "self_attention__unscaled"), ("decoder_layer", "self_attention__mask_reversed"),
    ("decoder_layer", "self_attention__mask_without_diagonal"), ("self_attention", "softmax__wrong_axis"),
    ("encoder_layer", "softmax__wrong_axis"), ("transformer_layer", "lora_projection__no_scaling"),
    ("transformer_layer", "prefix_self_attention__prefix_projected"),
    ("transformer_layer", "bottleneck_adapter__no_skip"),
    ("transformer_layer", "self_attention__unscaled"), ("transformer_layer", "prefix_self_attention__unscaled"),
    ("decoder_layer", "feed_forward__relu_after_w2"),
]

ASSIGNMENT = load_assignment(FOLDER)
VARIANTS_MODULE = sys.modules[ASSIGNMENT.reference.__name__.rpartition(".")[0] + ".variants"]
LISTED = [(q, v) for q in ASSIGNMENT.questions for v in q.variants]
ALL_CASES = ASSIGNMENT.prepared_cases(include_hidden=True)


def _implementation_name(variant) -> str:
    return variant.implementation.__name__


def _differs(got, expected, tolerance) -> bool:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return True
    with np.errstate(invalid="ignore"):
        return not np.allclose(got, expected, rtol=tolerance.rtol, atol=tolerance.atol)


def test_required_variants_exist_and_are_listed():
    listed = {_implementation_name(v) for _, v in LISTED}
    for name in REQUIRED:
        assert callable(getattr(VARIANTS_MODULE, name, None)), name
        assert name in listed, f"{name} is not listed in assignment.toml"


@pytest.mark.parametrize("composite, origin", PROPAGATED)
def test_building_block_mistakes_are_derived_for_composites(composite, origin):
    """No composite re-types a building block's mistake: the engine derives it through the reference."""
    assert not hasattr(VARIANTS_MODULE, f"{composite}__{origin.partition('__')[2]}")
    derived = [(p, v, out) for p in ALL_CASES if p.case.function == composite
               for v, out in p.variants if v.origin == origin]
    assert derived, f"{origin} is not derived for {composite}"
    assert any(_differs(out, p.expected, ASSIGNMENT.question(p.case.question).tolerance) for p, _, out in derived)
    home = next(q.id for q, v in LISTED if v.name == origin)
    assert all(v.question == home and v.origin_function == origin.partition("__")[0] for _, v, _ in derived)


def test_variant_function_and_implementation_follow_from_the_name():
    text = (FOLDER / "assignment.toml").read_text()
    assert "implementation = " not in text and "\nfunction = " not in text
    for _, variant in LISTED:
        assert variant.implementation is getattr(VARIANTS_MODULE, variant.name)


def test_every_variant_function_is_listed_and_named_for_its_function():
    listed = {_implementation_name(v) for _, v in LISTED}
    defined = {n for n, f in vars(VARIANTS_MODULE).items()
               if inspect.isfunction(f) and f.__module__ == VARIANTS_MODULE.__name__}
    assert defined == listed
    for question, variant in LISTED:
        assert _implementation_name(variant).split("__")[0] == variant.function
        assert variant.function in question.functions
        assert variant.message.strip()


def test_variant_names_are_unique_per_question():
    for question in ASSIGNMENT.questions:
        names = [v.name for v in question.variants]
        assert len(names) == len(set(names)), question.id


@pytest.mark.parametrize("question, variant", LISTED, ids=lambda x: getattr(x, "name", getattr(x, "id", "")))
def test_variant_is_recognisable_on_some_case(question, variant):
    cases = [p for p in ALL_CASES if p.case.question == question.id and p.case.function == variant.function]
    assert cases
    ran = [(p, out) for p in cases for v, out in p.variants if v is variant]
    if _implementation_name(variant) not in SHAPE_LIMITED:
        assert len(ran) == len(cases), "the variant failed on a case it should run on"
    assert any(_differs(out, p.expected, question.tolerance) for p, out in ran), \
        "the variant equals the reference on every case: it cannot be told apart"
    assert any(p.case.public for p, _ in ran), "the variant runs on no public case: students never see its hint"


@pytest.mark.parametrize("name", sorted({_implementation_name(v) for _, v in LISTED}))
def test_variant_source_is_standalone_pastable(name):
    function_name, source = make_examples.mistake_source(name)
    namespace: dict = {}
    exec("import numpy as np", namespace)
    for other, other_source in make_examples.correct_sources().items():
        if other != function_name:
            exec(other_source, namespace)
    exec(source, namespace)
    implementation = getattr(VARIANTS_MODULE, name)
    for prepared in (p for p in ALL_CASES if p.case.function == function_name):
        try:
            expected = implementation(*copy.deepcopy(prepared.case.args), **copy.deepcopy(prepared.case.kwargs))
        except Exception:
            continue
        with np.errstate(all="ignore"):
            got = namespace[function_name](*copy.deepcopy(prepared.case.args), **copy.deepcopy(prepared.case.kwargs))
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float),
                                   rtol=1e-12, atol=1e-12, equal_nan=True)
        return
    pytest.fail(f"{name} runs on no case")


def test_alternatives_have_full_credit_notes_and_mistakes_have_hints():
    kinds = {v.kind for _, v in LISTED}
    assert kinds == {"alternative", "mistake"}
    for _, variant in LISTED:
        assert len(variant.message) > 30
        assert "def " not in variant.message and "np." not in variant.message
