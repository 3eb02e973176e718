"""The student bundle's assignment.json: an assignment's configuration and public cases as plain data.

``grader release`` writes it next to the template notebook; ``grader check`` and ``grader ci`` load it
on a student's machine, where there is no reference code: the public cases come with their expected
values and the outputs of the known mistakes on them, so the same comparison (and the same hints)
run there. It holds no code and no hidden case; decoding accepts only plain JSON values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .assignment import (
    Assignment,
    BonusRule,
    BonusRuleName,
    Case,
    Concept,
    Grading,
    PreparedCase,
    Question,
    Section,
    Tolerance,
    Variant,
    VariantKind,
    Wording,
    WrittenMode,
)
from .errors import AssignmentError
from .results import QuestionKind

BUNDLE_FILE = "assignment.json"


def encode_value(value: Any) -> Any:
    """A case input or output as plain JSON (arrays as nested lists with their dtype)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return encode_value(np.asarray(value))
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode_value(v) for k, v in value.items()}}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


_ALLOWED_BUNDLE_DTYPES = {"<f8", "<f4", "<f2", "<i8", "<i4", "|b1", "|u1", "|i1"}


def decode_value(data: Any) -> Any:
    """Inverse of :func:`encode_value`; accepts only plain data (no code, no pickles)."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__ndarray__" in data:
        dtype = data.get("dtype", "<f8")
        if dtype not in _ALLOWED_BUNDLE_DTYPES:
            raise AssignmentError(f"array dtype {dtype!r} is not allowed in a bundle")
        return np.array(data["__ndarray__"], dtype=np.dtype(dtype))
    if "__tuple__" in data:
        return tuple(decode_value(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {k: decode_value(v) for k, v in data["__dict__"].items()}
    if "__float__" in data:
        if data["__float__"] not in ("nan", "inf", "-inf"):
            raise AssignmentError(f"bad special float {data['__float__']!r} in bundle")
        return float(data["__float__"])
    raise AssignmentError(f"unknown value in bundle: keys {sorted(data)}")


def bundle_document(assignment: Assignment) -> dict:
    """What ``release`` writes as assignment.json: configuration and public cases, no code."""
    return {
        "format": "grader-bundle/1",
        "id": assignment.id,
        "title": assignment.title,
        "version": assignment.version,
        "intro": assignment.intro,
        "bonus": vars(assignment.bonus),
        "limits": {k: list(v) if isinstance(v, tuple) else v for k, v in assignment.limits.items()},
        "sections": [vars(s) for s in assignment.sections],
        "grading": vars(assignment.grading),
        "wording": vars(assignment.wording),
        "questions": [_question_document(q) for q in assignment.questions],
        "cases": [_case_document(p) for p in assignment.prepared_cases(include_hidden=False)],
    }


def _question_document(question: Question) -> dict:
    return {
        "id": question.id, "kind": question.kind, "title": question.title, "prompt": question.prompt,
        "points": question.points, "bonus": question.bonus, "section": question.section,
        "functions": list(question.functions), "tolerance": vars(question.tolerance),
        "min_words": question.min_words,
        "variants": [{"name": v.name, "kind": v.kind, "function": v.function, "message": v.message}
                     for v in question.variants],
        "rubric": [{"concept": c.name, "synonyms": list(c.synonyms)} for c in question.rubric],
    }


def _case_document(prepared: PreparedCase) -> dict:
    case = prepared.case
    return {
        "id": case.id, "question": case.question, "function": case.function,
        "description": case.description, "arg_names": list(prepared.arg_names),
        "args": encode_value(tuple(case.args)), "kwargs": encode_value(dict(case.kwargs)),
        "expected": encode_value(prepared.expected),
        "variants": [{"name": v.name, "output": encode_value(out), **_derived_document(v)}
                     for v, out in prepared.variants],
        "building_blocks": list(prepared.building_blocks),
    }


def _derived_document(variant: Variant) -> dict:
    """A variant propagated from a building block is not in the question's list: it travels whole."""
    if variant.origin is None:
        return {"question": variant.question}
    return {"kind": variant.kind.value, "function": variant.function, "message": variant.message,
            "question": variant.question, "origin": variant.origin, "origin_function": variant.origin_function}


def load_bundle(path: Path | str) -> Assignment:
    """Load a student bundle's assignment.json (public cases only, no reference code)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AssignmentError(f"cannot read the assignment bundle: {error}", path=path) from None
    if not isinstance(document, dict) or document.get("format") != "grader-bundle/1":
        raise AssignmentError("not a grader bundle (format grader-bundle/1)", path=path)
    try:
        questions = tuple(_bundle_question(q) for q in document["questions"])
        by_id = {q.id: q for q in questions}
        cases = tuple(_bundle_case(c, by_id) for c in document["cases"])
        return Assignment(
            id=document["id"], title=document["title"], version=document["version"],
            questions=questions, intro=document.get("intro", ""),
            sections=tuple(Section(**s) for s in document.get("sections", [])),
            bonus=_bonus_rule(document.get("bonus", {})),
            grading=Grading(**document.get("grading", {})),
            wording=Wording(**document.get("wording", {})),
            limits={k: tuple(v) if isinstance(v, list) else v for k, v in document.get("limits", {}).items()},
            path=path.parent, bundled_cases=cases,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise AssignmentError(f"the bundle is damaged ({type(error).__name__}: {error}); "
                              "download it again", path=path) from None


def _bonus_rule(data: dict) -> BonusRule:
    rule = BonusRule(**data)
    return BonusRule(BonusRuleName(rule.rule), rule.minimum, WrittenMode(rule.written), rule.auto_min_concepts)


def _bundle_question(data: dict) -> Question:
    return Question(
        id=data["id"], kind=QuestionKind(data["kind"]), title=data["title"], prompt=data.get("prompt", ""),
        points=float(data["points"]), bonus=bool(data["bonus"]), section=data.get("section", ""),
        functions=tuple(data.get("functions", ())), tolerance=Tolerance(**data.get("tolerance", {})),
        min_words=int(data.get("min_words", 0)),
        variants=tuple(Variant(v["name"], VariantKind(v["kind"]), v["function"], v["message"], question=data["id"])
                       for v in data.get("variants", ())),
        rubric=tuple(Concept(c["concept"], tuple(c["synonyms"])) for c in data.get("rubric", ())),
    )


def _bundle_case(data: dict, questions: dict[str, Question]) -> PreparedCase:
    case = Case(question=data["question"], function=data["function"], args=decode_value(data["args"]),
                kwargs=decode_value(data["kwargs"]), id=data["id"], description=data.get("description", ""),
                public=True)
    variants_by_name = {v.name: v for q in questions.values() for v in q.variants}
    outputs = tuple((_bundle_variant(v, variants_by_name), decode_value(v["output"])) for v in data.get("variants", ()))
    return PreparedCase(case, tuple(data.get("arg_names", ())), decode_value(data["expected"]), outputs,
                        building_blocks=tuple(data.get("building_blocks", ())))


def _bundle_variant(data: dict, declared: dict[str, Variant]) -> Variant:
    if "origin" not in data:
        return declared[data["name"]]
    return Variant(data["name"], VariantKind(data["kind"]), data["function"], data["message"],
                   question=data.get("question"), origin=data["origin"], origin_function=data["origin_function"])


def find_bundle(submission: Path, levels: int = 3) -> Path | None:
    """The student bundle's assignment.json next to a submission or in a folder above it."""
    folder = Path(submission).resolve()
    folder = folder if folder.is_dir() else folder.parent
    for candidate in [folder, *folder.parents][: levels + 1]:
        if (candidate / BUNDLE_FILE).is_file():
            return candidate / BUNDLE_FILE
    return None
