"""Moodle archives and worksheets as Moodle itself writes them, for the tests.

Entry names follow ``mod/assign/classes/downloader.php`` (Moodle 4.1+) and the older
``assign::download_submissions`` (before 4.1): the prefix is ``clean_filename(str_replace('_', ' ',
<full name>) . '_' . <unique id>)`` -- for team submissions the group's name and id, and for the
"Default group" the name alone; under blind marking the name is get_string('participant') =
"Participant". Then ``_assignsubmission_<plugin>`` and, in folders, ``<filepath><filename>`` (4.1+) or
``_/<filepath minus leading slash><filename>`` (before 4.1; the trailing ``_`` of the old code), or, flat,
``_<filename>``. Online text arrives as ``onlinetext.html`` wrapped the way assignsubmission_onlinetext
exports it.

Worksheets follow ``mod/assign/gradingtable.php`` in download mode, written by Moodle's CSV dataformat
(UTF-8 with a byte-order mark, comma-separated, fields quoted only when PHP's fputcsv would quote them:
when they hold the delimiter, a quote, a space, a tab or a line break).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

ONLINETEXT_PAGE = '<!DOCTYPE html><html><head><meta charset="UTF-8"></head><body>{}</body></html>'


def clean_filename(name: str) -> str:
    """Moodle's clean_filename (PARAM_FILE) for the characters names in these tests contain."""
    return re.sub(r'[\x00-\x1f/\\:*?"<>|]', "", name)


def prefix(name: str, unique_id: int | str | None) -> str:
    text = name.replace("_", " ")
    return clean_filename(text + (f"_{unique_id}" if unique_id is not None else ""))


def entry_name(name: str, unique_id, filename: str, *, plugin: str = "file", layout: str = "4.1",
               filepath: str = "/") -> str:
    """The zip entry name Moodle writes for one file of one submission."""
    base = f"{prefix(name, unique_id)}_assignsubmission_{plugin}"
    if layout == "4.1":  # downloader.php: $prefixedfilename . $file->get_filepath() . $zipfilename
        return base + (filepath if plugin == "file" else "/") + filename
    if layout == "pre-4.1":  # locallib.php before 4.1: a trailing "_" on the folder
        return base + "_/" + (filepath.lstrip("/") if plugin == "file" else "") + filename
    if layout == "flat":  # "download submissions in folders" off
        return clean_filename(base + "_" + filename)
    raise ValueError(layout)


def moodle_zip(path: Path, files: list[tuple[str, bytes | str]], *, dates: dict[str, tuple] | None = None) -> Path:
    """A zip with the given (entry name, content) pairs, stored as Moodle's zip writer stores them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(dates or {}).get(name, (2026, 11, 30, 12, 0, 0)))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def onlinetext(body_html: str) -> str:
    return ONLINETEXT_PAGE.format(body_html)


# --------------------------------------------------------------------------- grading worksheets

HEADERS = {
    # gradingtable.php columns in download mode, in their order, for an assignment with file and online
    # text submissions and feedback comments; the strings are mod_assign's and core's in each language.
    "en": ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum grade", "Grade can be changed",
           "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"],
    "de": ["ID", "Vollständiger Name", "E-Mail-Adresse", "Status", "Bewertung", "Bestwertung",
           "Bewertung kann geändert werden", "Zuletzt geändert (Abgabe)", "Texteingabe online",
           "Zuletzt geändert (Bewertung)", "Feedback als Kommentar"],
}
PARTICIPANT = {"en": "Participant ", "de": "Teilnehmer/in"}  # get_string('hiddenuser', 'assign')


def php_field(value: str, delimiter: str = ",") -> str:
    """One field as PHP's fputcsv writes it (Moodle's CSV dataformat)."""
    if any(ch in value for ch in (delimiter, '"', " ", "\t", "\n", "\r", "\\")):
        return '"' + value.replace('"', '""') + '"'
    return value


def worksheet_bytes(rows: list[list[str]], language: str = "en", *, delimiter: str = ",", bom: bool = True,
                    newline: str = "\n") -> bytes:
    lines = [delimiter.join(php_field(v, delimiter) for v in row) for row in [HEADERS[language], *rows]]
    return (b"\xef\xbb\xbf" if bom else b"") + (newline.join(lines) + newline).encode("utf-8")
