"""Grading a course: where the submissions come from (files, folders, Moodle downloads), the run
through the gradebook and the workers, what is written, copied-work detection, the review glue, and
the grading worksheet downloaded from Moodle filled back in."""

from .outputs import GRADEBOOK_FILE, RESULTS_FILE, CourseRun, CourseSummary, gradebook_path, rerender
from .review import start_review
from .run import grade_course
from .similar import find_similar
from .sources import Sources, collect_sources
from .worksheet import FilledWorksheet, fill_worksheet

__all__ = ["GRADEBOOK_FILE", "RESULTS_FILE", "CourseRun", "CourseSummary", "FilledWorksheet", "Sources",
           "collect_sources", "fill_worksheet", "find_similar", "grade_course", "gradebook_path", "rerender",
           "start_review"]
