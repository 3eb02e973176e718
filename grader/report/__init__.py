"""Reports and exports: the HTML pages people read and the files other platforms import."""

from .export import (
    grades_csv,
    gradescope_results,
    junit_xml,
    moodle_worksheet_csv,
    step_summary,
    write_exports,
)
from .html import render_index, render_submission, safe_filename, write_html_reports

__all__ = [
    "grades_csv", "gradescope_results", "junit_xml", "moodle_worksheet_csv", "render_index",
    "render_submission", "safe_filename", "step_summary", "write_exports", "write_html_reports",
]
