"""The command line: each command parses, calls one library function, renders, returns an ExitCode.

    grader grade [PATHS…]          the instructor grades a course (default submissions/ → reports/<id>/)
    grader check SUBMISSION        a student checks a notebook against the public cases
    grader ci [SUBMISSION]         CI on a student's repository: check + HTML, JUnit, step summary
    grader release [ID] --out DIR  the student bundle (template notebook, public cases, workflow)
    grader review                  the local review app for written answers
    grader import-scores CSV       manual scores from a spreadsheet into the gradebook
    grader new ID                  a new assignment folder under reference/ that validates out of the box
    grader validate                every authoring check of an assignment, naming what is at fault
    grader semester                the course overview: students × sheets, the course's bonus rule
    grader moodle-worksheet CSV    fill the grading worksheet downloaded from Moodle
    grader gradescope --out ZIP    a Gradescope autograder that grades with grader
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

from .errors import ConfigError, GraderError
from .results import Status, SubmissionResult

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
        print(f"grader: error: {error}", file=sys.stderr)
        return ExitCode.GRADER_ERROR
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Autograder for numeric Python and Jupyter assignments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser("grade", help="grade a course: submissions in, results and reports out")
    grade.add_argument("paths", nargs="*", type=Path,
                       help="submission files, folders of them, or Moodle downloads "
                            "(default: submissions/<assignment>/ if it exists, else submissions/)")
    _assignment_option(grade)
    grade.add_argument("--out", type=Path, help="output folder (default: reports/<assignment>/)")
    grade.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2, help="parallel sandboxes (default: cores)")
    grade.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    grade.add_argument("--allow-reduced-isolation", action="store_true",
                       help="grade even without namespace isolation (student code then has only resource limits)")
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
    ci.add_argument("--require", choices=("bonus", "code", "all", "none"), default="bonus",
                    help="what must pass for exit code 0: what the bonus needs, by the assignment's bonus rule "
                         "(default: red when a bonus answer is missing or wrong, green when only optional "
                         "questions fail), every code check, every question, or nothing (report only)")
    ci.set_defaults(run=_ci)

    release = commands.add_parser("release", help="write the student bundle of an assignment")
    release.add_argument("assignment_id", nargs="?", metavar="ID", help="assignment id (same as --assignment)")
    _assignment_option(release)
    release.add_argument("--out", type=Path, required=True, help="folder to write the bundle into")
    release.add_argument("--force", action="store_true",
                         help="overwrite a notebook in --out even if it differs from the template (a student's work?)")
    release.add_argument("--no-wheel", dest="wheel", action="store_false",
                         help="do not build grader's wheel into the bundle (CI then installs grader from the index)")
    release.set_defaults(run=_release)

    review = commands.add_parser("review", help="review written answers in a local web app")
    _assignment_option(review)
    review.add_argument("--out", type=Path, help="the graded course's output folder (default: reports/<assignment>/)")
    review.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: 8765; 0 = any free)")
    review.add_argument("--reviewer", default="", help="the name decisions are recorded under (default: your account)")
    review.set_defaults(run=_review)

    scores = commands.add_parser("import-scores", help="import manual scores from a CSV into the gradebook")
    scores.add_argument("csv", type=Path, help="columns: student, question, and any of accepted, score, comment")
    _assignment_option(scores)
    scores.add_argument("--out", type=Path, help="the graded course's output folder (default: reports/<assignment>/)")
    scores.set_defaults(run=_import_scores)
    _authoring_commands(commands)
    _semester_command(commands)
    _platform_commands(commands)
    return parser


def _assignment_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", "-a", metavar="ID",
                        help="assignment id under reference/, its folder, or a bundle's assignment.json "
                             "(default: the only one available)")


def _authoring_commands(commands) -> None:
    new = commands.add_parser("new", help="write a new assignment folder that validates out of the box")
    new.add_argument("id", help="the assignment's id, e.g. ex02 (also its folder's name)")
    new.add_argument("--title", help="the sheet's title (default: '<id>: a new assignment')")
    new.add_argument("--reference", type=Path, default=Path("reference"), metavar="DIR",
                     help="the folder holding the assignments (default: reference/)")
    new.set_defaults(run=_new)

    validate = commands.add_parser("validate", help="check an assignment for authoring mistakes (exit 0 or 3)")
    validate.add_argument("--assignment", "-a", metavar="ID",
                          help="assignment id under reference/ or its folder (default: every assignment there)")
    validate.add_argument("--fast", action="store_true",
                          help="only the checks release and grade run first (one seed, no sandbox)")
    validate.set_defaults(run=_validate)


def _semester_command(commands) -> None:
    semester = commands.add_parser("semester", help="the course overview: students × sheets, the course bonus rule")
    semester.add_argument("--course", type=Path, default=Path("reference") / "course.toml",
                          help="the course definition (default: reference/course.toml)")
    semester.add_argument("--out", type=Path, default=Path("reports"),
                          help="the reports folder holding one graded folder per sheet (default: reports/)")
    semester.set_defaults(run=_semester)


# --------------------------------------------------------------------------- commands


def _grade(args: argparse.Namespace) -> int:
    from .course import grade_course
    from .sheets import SUBMISSIONS_ROOT, default_submissions
    from .validate import check_before_grading

    clues_from = args.paths or [SUBMISSIONS_ROOT]
    assignment = _instructor_assignment(args.assignment, submissions=clues_from, out=args.out)
    paths = args.paths or [default_submissions(assignment.id)]
    out_dir = _reports_dir(args, assignment)
    _check_submissions_belong(assignment, paths, explicit=bool(args.paths))
    check_before_grading(assignment, remember_in=out_dir)
    bar = _ProgressBar()
    run = grade_course(paths, assignment, out_dir, jobs=args.jobs, force=args.force,
                       allow_reduced_isolation=args.allow_reduced_isolation, progress=bar.update, on_start=bar.start)
    bar.close()
    _print_course_summary(run)
    _warn_unrelated(run.results, assignment)
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
    if os.environ.get("GITHUB_ACTIONS") == "true":  # points for GitHub Classroom, as its reporter prints them
        from .ci import classroom_notices

        print("\n".join(classroom_notices(outcome.result)))
    from .ci import passes

    return ExitCode.OK if passes(outcome.result, args.require, assignment) else ExitCode.CHECKS_FAILED


def _release(args: argparse.Namespace) -> int:
    from .sheets import release_keeping_work
    from .validate import check_before_grading

    if args.assignment_id and args.assignment and args.assignment_id != args.assignment:
        raise ConfigError(f"two assignments named: {args.assignment_id} and --assignment {args.assignment}")
    assignment = _instructor_assignment(args.assignment_id or args.assignment)
    check_before_grading(assignment)
    for path in release_keeping_work(assignment, args.out, force=args.force, wheel=args.wheel):
        print(f"wrote {path}")
    return ExitCode.OK


def _review(args: argparse.Namespace) -> int:
    from .course import start_review

    assignment = _instructor_assignment(args.assignment, out=args.out)
    out_dir = _reports_dir(args, assignment)
    server = start_review(assignment, out_dir, port=args.port, reviewer=args.reviewer)
    print(f"Review written answers at {server.login_url}\n  (open this address: it carries the secret every "
          f"request needs; Ctrl-C to stop; decisions are saved as you go, as {server.app.reviewer})")
    try:
        server.serve_forever()
    finally:
        server.shutdown()
    return ExitCode.OK


def _import_scores(args: argparse.Namespace) -> int:
    from .course import gradebook_path, rerender
    from .store import Gradebook, import_decisions

    assignment = _instructor_assignment(args.assignment, out=args.out)
    out_dir = _reports_dir(args, assignment)
    with Gradebook(gradebook_path(out_dir)) as gradebook:
        imported = import_decisions(gradebook, assignment, args.csv)
    rerender(assignment, out_dir)
    for change in imported.overwritten:  # the newest decision wins; never silently
        was = change.before
        if was is None:
            continue
        print(f"  {change.student} {change.question_id}: replaced the decision by {was.reviewer or 'someone'} "
              f"({was.decided_at}): accepted={was.accepted} score={was.score} comment={was.comment!r}")
    for line, row, newer in imported.kept:
        print(f"  line {line}: {row.question_id} kept the newer decision by {newer.reviewer or 'someone'} "
              f"({newer.decided_at}) instead of this row ({row.decided_at})")
    print(f"imported {len(imported.stored)} decisions ({len(imported.overwritten)} replaced an earlier one, "
          f"{len(imported.kept)} older than the gradebook's not imported); reports in {out_dir} updated")
    return ExitCode.OK


def _new(args: argparse.Namespace) -> int:
    from .new import new_assignment

    for path in new_assignment(args.id, args.reference, title=args.title):
        print(f"wrote {path}")
    folder = args.reference / args.id
    named = args.id if args.reference == Path("reference") else folder
    print(f"next: edit the files in {folder}/, then run: grader validate --assignment {named}")
    return ExitCode.OK


def _validate(args: argparse.Namespace) -> int:
    from .assignment import find_assignments, resolve_assignment
    from .validate import validate

    folders = [resolve_assignment(args.assignment)] if args.assignment else find_assignments(Path("reference"))
    if not folders:
        raise GraderError("no assignment found: reference/ holds no folder with an assignment.toml "
                          "(grader new ID writes one), or pass --assignment PATH")
    failed = False
    for folder in folders:
        report = validate(folder, full=not args.fast)
        for problem in report.problems:
            print(f"{problem.severity.value}: {problem}")
        verdict = "ok" if report.ok else f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''}"
        warnings = f", {len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}" \
            if report.warnings else ""
        print(f"{folder}: {verdict}{warnings}")
        for item in report.checked:
            print(f"  ✓ {item}")
        failed = failed or not report.ok
    return ExitCode.GRADER_ERROR if failed else ExitCode.OK


def _semester(args: argparse.Namespace) -> int:
    from .semester import load_course, write_semester

    course = load_course(args.course)
    overview = write_semester(course, args.out)
    for path in overview.files:
        print(f"wrote {path}")
    print(overview.summary_line())
    return ExitCode.OK


# --------------------------------------------------------------------------- platforms (Moodle, Gradescope)


def _platform_commands(commands) -> None:
    worksheet = commands.add_parser("moodle-worksheet", help="fill the grading worksheet downloaded from Moodle")
    worksheet.add_argument("csv", type=Path, help="the worksheet as downloaded (Grading action → Download grading "
                                                  "worksheet)")
    _assignment_option(worksheet)
    worksheet.add_argument("--out", type=Path, help="the graded course's reports folder, where the filled copy "
                                                    "is written (default: reports/<assignment>/)")
    worksheet.set_defaults(run=_moodle_worksheet)

    gradescope = commands.add_parser("gradescope", help="write a Gradescope autograder zip for an assignment")
    _assignment_option(gradescope)
    gradescope.add_argument("--out", type=Path, default=Path("autograder.zip"),
                            help="the zip to write (default: autograder.zip)")
    gradescope.set_defaults(run=_gradescope)


def _moodle_worksheet(args: argparse.Namespace) -> int:
    from .course.worksheet import fill_worksheet

    out_dir = args.out or Path("reports") / _instructor_assignment(args.assignment).id
    report = fill_worksheet(args.csv, out_dir)
    print(f"filled worksheet: {report.path}")
    print(f"rows filled: {report.filled}; rows left empty (no graded submission): {report.left_empty}")
    for line in report.unmatched:
        print(f"not filled: {line}")
    for line in report.warnings:
        print(f"note: {line}")
    if report.german and report.rows_with_grades:
        print(f"note: {report.rows_with_grades} rows already have a grade in Moodle. Moodle cannot read back the "
              "German dates in 'Zuletzt geändert (Bewertung)' and skips such rows: tick the option to allow updating "
              "records modified more recently in Moodle ('ignore modified') when you upload this file")
    print("upload it in Moodle: View all submissions → Grading action → Upload grading worksheet")
    return ExitCode.OK


def _gradescope(args: argparse.Namespace) -> int:
    from .gradescope import build_autograder

    assignment = _instructor_assignment(args.assignment)
    path = build_autograder(assignment, args.out)
    print(f"wrote {path}: upload it as the assignment's autograder on Gradescope (Configure Autograder → Zip file)")
    return ExitCode.OK


# --------------------------------------------------------------------------- helpers


def _instructor_assignment(name: str | None, *, submissions: Sequence[Path] = (), out: Path | None = None):
    """The assignment under reference/: named, the only one, or inferred (see grader.sheets)."""
    from .assignment import load_assignment
    from .sheets import infer_assignment

    return load_assignment(infer_assignment(name, submissions=submissions, out=out))


def _check_submissions_belong(assignment, paths: list[Path], explicit: bool) -> None:
    """Submissions whose notebooks say they are another assignment's: an error for the default folder,
    a warning for paths the instructor named."""
    from .sheets import foreign_metadata

    foreign = foreign_metadata(paths, assignment.id)
    if not foreign:
        return
    others = sorted({c.assignment for c in foreign})
    message = (f"the submissions in {', '.join(str(p) for p in paths)} are for {', '.join(others)} (e.g. "
               f"{foreign[0].source}), not {assignment.id}")
    if not explicit:
        raise GraderError(f"{message}: name {assignment.id}'s submissions, e.g. grader grade "
                          f"submissions/{assignment.id}/ --assignment {assignment.id}")
    print(f"grader: warning: {message}; grading them as {assignment.id} anyway", file=sys.stderr)


def _warn_unrelated(results: list[SubmissionResult], assignment) -> None:
    from .sheets import unrelated_results

    unrelated = unrelated_results(results)
    if not unrelated:
        return
    shown = ", ".join(unrelated[:5]) + (f" and {len(unrelated) - 5} more" if len(unrelated) > 5 else "")
    functions = ", ".join(assignment.functions) or "none"
    print(f"grader: warning: {len(unrelated)} of {len(results)} submissions contain none of {assignment.id}'s "
          f"functions ({functions}) or answers: they may belong to another assignment ({shown})", file=sys.stderr)


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
        return _instructor_assignment(name, submissions=[submission])
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
    print(f"{result.student} — {result.assignment} ({result.mode}, isolation: {result.isolation})")
    if result.error:
        print(f"  could not be graded: {result.error}")
        return
    width = max((len(q) for q in result.questions), default=4)
    columns = max(60, shutil.get_terminal_size((100, 20)).columns)
    for question_id, question in result.questions.items():
        first = question.feedback.splitlines()[0] if question.feedback else ""
        head = (f"  {STATUS_MARK[question.status]} {question_id:<{width}}  {question.status.value:<8} "
                f"{question.score:>4g}/{question.max_score:<3g}  ")
        print(textwrap.fill(first, width=columns, initial_indent=head, subsequent_indent=" " * len(head))
              if first else head.rstrip())
        # hints and carried-forward notes too, even when the first line names another case that raised
        for line in question.feedback.splitlines()[1:]:
            if line.startswith("Hint:") or line.startswith("Correct given your"):
                print(textwrap.fill(line, width=columns, initial_indent=" " * len(head),
                                    subsequent_indent=" " * (len(head) + 2)))
    for cell in result.cells:
        if cell.status not in ("ok",) or cell.notes:
            detail = cell.message or "; ".join(cell.notes)
            print(f"  cell {cell.index + 1}: {cell.status} {detail[:110]}")
    print(f"  total {result.score:g}/{result.max_score:g}. {result.bonus.reason}")


def _print_course_summary(run) -> None:
    summary = run.summary
    print(f"graded {summary.submissions} submissions ({summary.reused} unchanged, reused) for {run.assignment}: "
          f"bonus awarded {summary.bonus_awarded}, pending review {summary.bonus_pending}, "
          f"unreadable {summary.unreadable}")
    if summary.similar:
        pairs = "pair" if summary.similar == 1 else "pairs"
        print(f"{summary.similar} {pairs} of similar submissions flagged (see the overview)")
    for warning in getattr(run, "warnings", []):
        print(f"warning: {warning}")
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
