"""A synthetic course for Exercise 1: two Moodle "download all submissions" archives and a scores sheet.

    python reference/ex01/make_course.py --students 120 --out /tmp/course

writes, into --out:
  run1.zip    the first deadline: every student's notebook (or module), in Moodle's folder layout
  run2.zip    a resubmission round: a fifth of the students hand in a fixed version
  scores.csv  an instructor's spreadsheet of decisions on some written answers (for import-scores)

Students differ the way a class does: most are correct, some carry one of the known mistakes, a few
crash or hand in the untouched template; written answers are assembled from a pool of sentences, so
they differ from student to student, and two planted pairs copy each other's answers.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_examples  # noqa: E402
import nbformat  # noqa: E402

FIRST_NAMES = ["Anna", "Ben", "Chiara", "Deniz", "Elif", "Finn", "Greta", "Hannes", "Ines", "Jonas", "Kemal", "Lea",
               "Mara", "Niklas", "Olga", "Paul", "Quirin", "Rosa", "Sven", "Tara", "Umut", "Vera", "Wen", "Yusuf"]
LAST_NAMES = ["Bauer", "Çelik", "Dietrich", "Engel", "Fischer", "García", "Hoffmann", "Ivanova", "Jung", "Krüger",
              "Lehmann", "Müller", "Nowak", "Okafor", "Peters", "Richter", "Schmidt", "Tanaka", "Vogel", "Weiß"]
CRASHING = {"softmax": "def softmax(x):\n    raise ValueError('not finished')\n"}


def sentence_pool() -> dict[str, list[str]]:
    """Every sentence of every example answer, per question."""
    texts = [make_examples.GOOD_ANSWERS, *make_examples.STUDENT_ANSWERS.values()]
    pool: dict[str, list[str]] = {}
    for answers in texts:
        for question, text in answers.items():
            sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
            pool.setdefault(question, []).extend(s for s in sentences if len(s.split()) >= 6)
    return {q: sorted(set(s)) for q, s in pool.items()}


OPENERS = ["In my view", "From the papers I read", "Put simply", "As far as I understand it", "In practice",
           "Looking at the lecture slides", "Compared with full fine-tuning", "For multilingual models",
           "In the MAD-X setting", "From an engineering point of view"]
CLAIMS = ["the choice of method depends on the budget", "the frozen backbone is the key design decision",
          "the number of trainable parameters matters less than where they sit", "the methods trade memory for speed",
          "the differences shrink for very large models", "cross-lingual transfer benefits the most",
          "hyperparameters need more care than expected", "reusing one base model for many tasks is the main win",
          "the implementation effort differs a lot", "inference cost is often overlooked"]
REASONS = ["since only small modules are stored per task", "because gradients flow through the whole network anyway",
           "as the base weights are shared", "because the added modules are tiny", "as shown for low-resource languages",
           "since optimizer states shrink with the trainable parameters", "because merging is not always possible",
           "as the prefix consumes sequence length", "since adapters add sequential computation",
           "because LoRA can be merged into W"]


def student_answers(rng: random.Random, pool: dict[str, list[str]]) -> dict[str, str]:
    """Two sentences of the pool and two of the student's own making per answer: different students
    then share sentences, as classmates do, but not whole answers."""
    answers = {}
    for question, sentences in pool.items():
        if rng.random() < 0.05:
            continue  # forgot this one
        own = [f"{rng.choice(OPENERS)}, {rng.choice(CLAIMS)}, {rng.choice(REASONS)}." for _ in range(2)]
        chosen = rng.sample(sentences, min(2, len(sentences))) + own
        rng.shuffle(chosen)
        answers[question] = " ".join(chosen)
    return answers


def student_notebook(rng: random.Random, kind: str, answers: dict[str, str], mistakes: list[str]):
    if kind == "template":
        return make_examples.template_notebook(make_examples.assignment())
    if kind == "mistake":
        return make_examples.build_submission("notebook", answers=answers, mistakes=(rng.choice(mistakes),))
    if kind == "crash":
        return make_examples.build_submission("notebook", answers=answers, overrides=CRASHING)
    return make_examples.build_submission("notebook", answers=answers)


def write_course(students: int, out: Path, seed: int = 7) -> dict[str, Path]:
    rng = random.Random(seed)
    pool = sentence_pool()
    mistakes = [v.implementation.__name__ for q in make_examples.assignment().questions for v in q.variants
                if v.kind == "mistake"]
    people = _names(students, rng)
    answers = {person: student_answers(rng, pool) for person in people}
    for copier, original in zip(people[-2:], people[:2]):  # two planted copies of written answers
        answers[copier] = dict(answers[original])
    kinds = {person: rng.choices(["correct", "mistake", "crash", "template"], [70, 20, 6, 4])[0] for person in people}
    out.mkdir(parents=True, exist_ok=True)
    first = {person: student_notebook(rng, kinds[person], answers[person], mistakes) for person in people}
    resubmitting = rng.sample([p for p in people if kinds[p] != "correct"] or people, k=max(1, students // 5))
    second = dict(first)
    for person in resubmitting:
        second[person] = make_examples.build_submission("notebook", answers=answers[person])
    paths = {"run1": out / "run1.zip", "run2": out / "run2.zip", "scores": out / "scores.csv"}
    _moodle_zip(paths["run1"], first)
    _moodle_zip(paths["run2"], second)
    _scores_sheet(paths["scores"], people[:10])
    return paths


def _names(count: int, rng: random.Random) -> list[tuple[str, int]]:
    names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    return [(names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else ""), 4000 + i)
            for i in range(count)]


def _moodle_zip(path: Path, notebooks: dict) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for (name, participant), notebook in notebooks.items():
            # Moodle 4.1+ names the folder without the trailing "_" older versions wrote
            archive.writestr(f"{name}_{participant}_assignsubmission_file/ex01.ipynb", nbformat.writes(notebook))


def _scores_sheet(path: Path, people: list[tuple[str, int]]) -> None:
    """Decisions the way an instructor keeps them in a spreadsheet; student ids as grader derives them."""
    from grader.course.moodle import student_id

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "question", "accepted", "comment"])
        for name, participant in people:
            for question in ("2.1", "2.2", "2.3", "3.1", "3.2", "3.3"):
                writer.writerow([student_id(name, str(participant)), question, "yes", "clear and correct"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=120)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for path in write_course(args.students, args.out, args.seed).values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
