"""A handed-in notebook as the student saw it: nbconvert's HTML exporter, sanitised, without scripts.

nbconvert is the library Jupyter itself uses to turn a notebook into one HTML page (nbviewer renders
untrusted notebooks with it): markdown, code with highlighting, text, images, plots and HTML outputs
look as they did in JupyterLab. Student content is untrusted, so three layers keep it inert:

- nbconvert's ``SanitizeHTML`` preprocessor cleans the HTML in markdown cells and HTML outputs with
  bleach before rendering: tags outside a list of harmless ones (no ``<script>``, ``<iframe>``,
  ``<style>``, ``<form>``) are shown as text, event handlers and ``javascript:`` URLs are dropped,
  and outputs of any other type than text, images and HTML (JavaScript, widgets, SVG) are removed.
  (The exporter's own ``sanitize_html`` switch cleans the markdown *after* rendering it and so shows
  every heading and paragraph as escaped tags; the preprocessor cleans the source instead.)
- our template (``nbtemplate/grader-notebook``) extends nbconvert's lab template without any script
  (no require.js, MathJax, mermaid, widgets) and shows JavaScript outputs as a note;
- the page is served with ``script-src 'none'`` (:data:`NOTEBOOK_CSP`): even markup that slipped
  through could not run, load anything from elsewhere or send anything anywhere.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from ..errors import GraderError

TEMPLATES = Path(__file__).parent / "nbtemplate"
NOTEBOOK_CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_exporter_lock = threading.Lock()  # an HTMLExporter is not documented as thread-safe: one render at a time


class NotebookUnreadable(GraderError):
    """The kept bytes are not a notebook nbformat can read."""


_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2",
         "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
         "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"]
_ATTRIBUTES = {"*": ["class", "title"], "a": ["href", "title"], "img": ["src", "alt", "width", "height"],
               "td": ["colspan", "rowspan", "align"], "th": ["colspan", "rowspan", "align"]}


def _sanitizer():
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    return SanitizeHTML(tags=_TAGS, attributes=_ATTRIBUTES, strip=False, strip_comments=True)


def render_notebook(data: bytes, banner: str) -> str:
    """The notebook's bytes as one HTML page (no scripts), with ``banner`` on top (who, which file)."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        notebook = nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4)
    except Exception as error:  # nbformat raises many kinds for broken JSON or schemas
        raise NotebookUnreadable(f"the handed-in file is not a readable notebook ({type(error).__name__})") from None
    with _exporter_lock:
        exporter = HTMLExporter(template_name="grader-notebook", extra_template_basedirs=[str(TEMPLATES)],
                                exclude_anchor_links=True, embed_images=False)
        exporter.register_preprocessor(_sanitizer(), enabled=True)
        with warnings.catch_warnings():  # "IPython3 lexer unavailable", "element ... not able to be represented"
            warnings.simplefilter("ignore")
            body, _ = exporter.from_notebook_node(notebook, resources={"grader_banner": banner,
                                                                       "metadata": {"name": banner}})
    return body
