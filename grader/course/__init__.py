"""Grading a course: where the submissions come from (files, folders, Moodle downloads), the run
through the gradebook and the workers, what is written, copied-work detection and the review glue."""

from .outputs import GRADEBOOK_FILE, RESULTS_FILE, CourseRun, CourseSummary, gradebook_path, rerender
from .review import start_review
from .run import grade_course
from .similar import find_similar
from .sources import Sources, collect_sources

__all__ = ["GRADEBOOK_FILE", "RESULTS_FILE", "CourseRun", "CourseSummary", "Sources", "collect_sources",
           "find_similar", "grade_course", "gradebook_path", "rerender", "start_review"]
