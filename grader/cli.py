"""The command line: each command parses, calls one library function, renders, returns an ExitCode.

    grader grade [PATHS…]          the instructor grades a course (default submissions/ → reports/<id>/)
    grader check SUBMISSION        a student checks a notebook against the public cases
    grader ci [SUBMISSION]         CI on a student's repository: check + HTML, JUnit, step summary
    grader release [ID] --out DIR  the student bundle (template notebook, public cases, workflow)
    grader review                  the local review app for written answers
    grader import-scores CSV       manual scores from a spreadsheet into the gradebook
"""

from __future__ import annotations

import argparse
import enum
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from .errors import GraderError
from .results import Status, SubmissionResult
from .text import for_terminal

STATUS_MARK = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.TIMEOUT: "⏱",
               Status.MISSING: "–", Status.PENDING: "…"}


class ExitCode(enum.IntEnum):
    """Documented exit codes of every command."""

    OK = 0  # done; for check/ci: every required check passed
    CHECKS_FAILED = 1  # check/ci: at least one required check did not pass
    USAGE = 2  # bad command line (argparse's own code)
    GRADER_ERROR = 3  # grader could not do its job (bad assignment, no sandbox, unreadable input)
    INTERRUPTED = 130  # Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except GraderError as error:
        print(f"grader: error: {for_terminal(str(error))}", file=sys.stderr)  # may quote a student's file name
        return ExitCode.GRADER_ERROR
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder for numeric Python and Jupyter assignments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser("grade", help="grade a course: submissions in, results and reports out")
    grade.add_argument("paths", nargs="*", type=Path, default=[Path("submissions")],
                       help="submission files, folders of them, or Moodle downloads (default: submissions/)")
    _assignment_option(grade)
    grade.add_argument("--out", type=Path, help="output folder (default: reports/<assignment>/)")
    grade.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2, help="parallel sandboxes (default: cores)")
    grade.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    grade.add_argument("--allow-reduced-isolation", action="store_true",
                       help="grade even without namespace isolation (student code then has only resource limits)")
    grade.add_argument("--group-readable", action="store_true",
                       help="let the output folder's group read the grades and answers (default: only you can)")
    grade.set_defaults(run=_grade)

    check = commands.add_parser("check", help="check one submission against the public cases")
    check.add_argument("submission", type=Path)
    _assignment_option(check)
    check.add_argument("--html", type=Path, help="also write an HTML report to this file")
    check.set_defaults(run=_check)

    ci = commands.add_parser("ci", help="for CI on a student's repository: check, report, JUnit, summary")
    ci.add_argument("submission", type=Path, nargs="?", help="default: the one notebook in the repository")
    _assignment_option(ci)
    ci.add_argument("--out", type=Path, default=Path("grader-report"), help="folder for report.html and junit.xml")
    ci.add_argument("--require", choices=("code", "all", "none"), default="code",
                    help="what must pass for exit code 0: the code checks (default), also the written answers "
                         "being present, or nothing (report only)")
    ci.set_defaults(run=_ci)

    release = commands.add_parser("release", help="write the student bundle of an assignment")
    release.add_argument("assignment", nargs="?", help="assignment id (default: the only one in reference/)")
    release.add_argument("--out", type=Path, required=True, help="folder to write the bundle into")
    release.set_defaults(run=_release)

    review = commands.add_parser("review", help="review written answers in a local web app")
    _assignment_option(review)
    review.add_argument("--out", type=Path, help="the graded course's output folder (default: reports/<assignment>/)")
    review.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0 = any free)")
    review.set_defaults(run=_review)

    scores = commands.add_parser("import-scores", help="import manual scores from a CSV into the gradebook")
    scores.add_argument("csv", type=Path, help="columns: student, question, and any of accepted, score, comment")
    _assignment_option(scores)
    scores.add_argument("--out", type=Path, help="the graded course's output folder (default: reports/<assignment>/)")
    scores.set_defaults(run=_import_scores)
    return parser


def _assignment_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", "-a", metavar="ID",
                        help="assignment id under reference/, its folder, or a bundle's assignment.json "
                             "(default: the only one available)")


# --------------------------------------------------------------------------- commands


def _grade(args: argparse.Namespace) -> int:
    from .course import grade_course

    assignment = _instructor_assignment(args.assignment)
    out_dir = _reports_dir(args, assignment)
    bar = _ProgressBar()
    run = grade_course(args.paths, assignment, out_dir, jobs=args.jobs, force=args.force,
                       allow_reduced_isolation=args.allow_reduced_isolation, progress=bar.update, on_start=bar.start,
                       group_readable=args.group_readable)
    bar.close()
    _print_course_summary(run)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path and run.results:  # grading itself runs in GitHub Actions: a summary on the run's page
        from .report import step_summary

        with open(summary_path, "a", encoding="utf-8") as summary:
            summary.write(step_summary(run.results, assignment))
    return ExitCode.OK


def _check(args: argparse.Namespace) -> int:
    from .api import check

    assignment = _any_assignment(args.assignment, args.submission)
    result = check(args.submission, assignment)
    _notice_reduced_isolation(result)
    _print_result(result)
    if args.html:
        from .report import render_submission

        args.html.write_text(render_submission(result, assignment), encoding="utf-8")
        print(f"report: {args.html}")
    return ExitCode.OK if _passes(result, "all") else ExitCode.CHECKS_FAILED


def _ci(args: argparse.Namespace) -> int:
    from .ci import run_ci

    submission = args.submission or _find_notebook(Path.cwd())
    assignment = _any_assignment(args.assignment, submission)
    outcome = run_ci(submission, assignment, args.out, summary_path=os.environ.get("GITHUB_STEP_SUMMARY"))
    _notice_reduced_isolation(outcome.result)
    _print_result(outcome.result)
    for path in outcome.files:
        print(f"wrote {path}")
    if args.require == "none":
        return ExitCode.OK
    return ExitCode.OK if _passes(outcome.result, args.require) else ExitCode.CHECKS_FAILED


def _release(args: argparse.Namespace) -> int:
    from .release import release

    assignment = _instructor_assignment(args.assignment)
    for path in release(assignment, args.out):
        print(f"wrote {path}")
    return ExitCode.OK


def _review(args: argparse.Namespace) -> int:
    from .course import start_review

    assignment = _instructor_assignment(args.assignment)
    out_dir = _reports_dir(args, assignment)
    server = start_review(assignment, out_dir, port=args.port)
    print(f"Review written answers at {server.url}  (Ctrl-C to stop; decisions are saved as you go)")
    try:
        server.serve_forever()
    finally:
        server.shutdown()
    return ExitCode.OK


def _import_scores(args: argparse.Namespace) -> int:
    from .course import gradebook_path, rerender
    from .store import Gradebook, import_decisions_csv

    assignment = _instructor_assignment(args.assignment)
    out_dir = _reports_dir(args, assignment)
    with Gradebook(gradebook_path(out_dir)) as gradebook:
        count = import_decisions_csv(gradebook, assignment, args.csv)
    rerender(assignment, out_dir)
    print(f"imported {count} decisions; reports in {out_dir} updated")
    return ExitCode.OK


# --------------------------------------------------------------------------- helpers


def _instructor_assignment(name: str | None):
    from .assignment import load_assignment, resolve_assignment

    return load_assignment(resolve_assignment(name))


def _reports_dir(args: argparse.Namespace, assignment) -> Path:
    """--out, or the default reports/<assignment>/ that grade, review and import-scores share."""
    return args.out or Path("reports") / assignment.id


def _any_assignment(name: str | None, submission: Path):
    """The instructor's reference when present, else the student bundle next to the submission."""
    from .assignment import DEFINITION_FILE
    from .bundle import BUNDLE_FILE, find_bundle, load_bundle

    if name and Path(name).is_file():
        return load_bundle(Path(name))
    if name and (Path(name) / BUNDLE_FILE).is_file() and not (Path(name) / DEFINITION_FILE).is_file():
        return load_bundle(Path(name) / BUNDLE_FILE)
    if Path("reference").is_dir() or (name and (Path(name) / DEFINITION_FILE).is_file()):
        return _instructor_assignment(name)
    bundle = find_bundle(submission)
    if bundle is None:
        raise GraderError(f"no assignment found for {submission}: put it next to the bundle's {BUNDLE_FILE} "
                          "(from the course's release), or pass --assignment PATH")
    return load_bundle(bundle)


def _find_notebook(root: Path) -> Path:
    found = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if len(found) != 1:
        names = ", ".join(str(p.relative_to(root)) for p in found[:5]) or "none"
        raise GraderError(f"cannot tell which notebook to check (found: {names}); name it: grader ci NOTEBOOK")
    return found[0]


def _notice_reduced_isolation(result: SubmissionResult) -> None:
    if result.isolation == "process":
        print("notice: bubblewrap is not available here, so your code ran with resource limits only "
              "(the instructor grades with full isolation)", file=sys.stderr)


def _passes(result: SubmissionResult, require: str) -> bool:
    if result.error:
        return False
    ok = {Status.PASSED, Status.PENDING}
    return all(q.status in ok for q in result.questions.values() if require == "all" or q.kind == "code")


def _print_result(result: SubmissionResult) -> None:
    """The result on the terminal; student text (messages, names) never sends escape sequences to it."""
    print(for_terminal(f"{result.student} — {result.assignment} ({result.mode}, isolation: {result.isolation})"))
    if result.error:
        print(f"  could not be graded: {for_terminal(result.error)}")
        return
    width = max((len(q) for q in result.questions), default=4)
    columns = max(60, shutil.get_terminal_size((100, 20)).columns)
    for question_id, question in result.questions.items():
        first = for_terminal(question.feedback.splitlines()[0]) if question.feedback.strip() else ""
        head = (f"  {STATUS_MARK[question.status]} {question_id:<{width}}  {question.status.value:<8} "
                f"{question.score:>4g}/{question.max_score:<3g}  ")
        print(textwrap.fill(first, width=columns, initial_indent=head, subsequent_indent=" " * len(head))
              if first else head.rstrip())
    for cell in result.cells:
        if cell.status not in ("ok",) or cell.notes:
            detail = cell.message or "; ".join(cell.notes)
            print(f"  cell {cell.index + 1}: {cell.status} {for_terminal(detail[:110])}")
    print(f"  total {result.score:g}/{result.max_score:g}. {for_terminal(result.bonus.reason)}")


def _print_course_summary(run) -> None:
    summary = run.summary
    print(f"graded {summary.submissions} submissions ({summary.reused} unchanged, reused) for {run.assignment}: "
          f"bonus awarded {summary.bonus_awarded}, pending review {summary.bonus_pending}, "
          f"unreadable {summary.unreadable}")
    if summary.similar:
        pairs = "pair" if summary.similar == 1 else "pairs"
        print(f"{summary.similar} {pairs} of similar submissions flagged (see the overview)")
    if not run.files:
        print("nothing changed since the last run: the reports are up to date")
    print(f"reports: {run.out_dir / 'index.html'}")
    print(f"results: {run.results_file}")


class _ProgressBar:
    """tqdm on a terminal; silent when stderr is not one."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, total: int) -> None:
        if sys.stderr.isatty():
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the grading workers are forked after this
            self.bar = tqdm(total=total, unit="sub", desc="grading", file=sys.stderr, smoothing=0.1)

    def update(self, result: SubmissionResult) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
