"""HTML of the bundle: one offline page per executed notebook, and the index page.

Notebook pages go through nbconvert's HTMLExporter with the kit's own ``mailaudit`` template
(cell markup from ``classic``, a head of our own with no CDN or web font; one inline script sorts tables), code and
prompts excluded, and the ``parameters`` / ``injected-parameters`` cells removed. Tracebacks and
what cells wrote to stderr stay out of the page (the cover says in one line why a report failed;
the bundle's logs/<report>.log keeps the rest).
"""
from __future__ import annotations

import copy
import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from mailaudit.narrative import language
from mailaudit.narrative.common import severity_word
from mailaudit.narrative.language import N_, _, ngettext

TEMPLATES_DIR = Path(__file__).parent / "templates"
PARAMETER_TAGS = ("parameters", "injected-parameters")
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
"""papermill's big red "An Exception was encountered" banners; the cover says it in one line."""
TOC_PLACEHOLDER = "<!--MAILAUDIT-TOC-->"
REPORT_TITLES = {
    "data_and_tracking": N_("Data and tracking readiness"),
    "list_hygiene": N_("List hygiene"),
    "open_inflation": N_("Open Rate inflation"),
    "segments": N_("Segment comparison"),
    "conversion": N_("Email to order conversion"),
}
STATUS_WORDS = {"ok": N_("ok"), "failed": N_("failed"), "skipped": N_("skipped")}

_HEADING = re.compile(r'<h([23])\s+id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


@lru_cache(maxsize=1)
def report_css() -> str:
    return (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def sort_script() -> str:
    """The page's only script: tables sort on a click on a header (inline, no fetch)."""
    return (TEMPLATES_DIR / "sort_tables.js").read_text(encoding="utf-8")


def report_title(name: str) -> str:
    return _(REPORT_TITLES[name]) if name in REPORT_TITLES else name.replace("_", " ").capitalize()


def cover_words() -> dict[str, str]:
    """The fixed words of a report page's cover, in the bundle's language."""
    return {"kicker": _("Email-marketing audit"), "client": _("Client"), "period": _("Period"),
            "source": _("Data source"), "generated": _("Generated"), "version": _("Kit version"),
            "failed": _("This report failed: {error}. The sections below are the part that ran."),
            "failed_log": _("The full error is in {log}."), "back": _("← all reports")}


def sanitize_notebook(nb: nbformat.NotebookNode, params_path: str, out_dir: str,
                      scrub: Callable[[str], str]) -> nbformat.NotebookNode:
    """Make an executed notebook safe to ship.

    papermill writes every injected value into ``metadata.papermill.parameters`` and into the
    injected cell; both are reduced to the two path parameters (pointing at the final bundle,
    not the temporary folder). Error outputs (tracebacks, which may quote data or a driver's
    message) pass through `scrub`; anything else a notebook displays is left for the secret scan
    to judge, so a notebook that prints a secret fails the build instead of hiding the bug.
    """
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict):
        for key in ("parameters", "default_parameters", "input_path", "output_path"):
            papermill.pop(key, None)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cell.source = "# Parameters\n" + "".join(
                f"{name} = {value!r}\n" for name, value in
                (("params_path", params_path), ("out_dir", out_dir)))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["evalue"] = scrub(output.get("evalue", ""))
                output["traceback"] = [scrub(line) for line in output.get("traceback", [])]
    return nb


def _exporter() -> HTMLExporter:
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {*PARAMETER_TAGS, PAPERMILL_ERROR_TAG}
    config.HTMLExporter.exclude_input = True
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=config, template_name="mailaudit",
                            extra_template_basedirs=[str(TEMPLATES_DIR)])
    exporter.log.setLevel("ERROR")   # not "alternative text is missing" once per chart on the console
    return exporter


def _reader_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `nb` without error outputs and stderr streams (kept in the log, not the page)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"
                            and not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


def export_report_html(nb: nbformat.NotebookNode, html_path: Path, cover: dict) -> None:
    """Write the offline HTML of an executed notebook.

    `cover`: client, title, period, source, generated_at, version, status, error, log (the
    bundle's log file of this report).
    """
    resources = {"mailaudit": {**cover, "css": report_css(), "sort_script": sort_script(), "words": cover_words(),
                               "language": language.active()}}
    body, _resources = _exporter().from_notebook_node(_reader_outputs(nb), resources=resources)
    html_path.write_text(insert_toc(body), encoding="utf-8")


def insert_toc(page: str) -> str:
    """Replace the placeholder with a table of contents of the page's h2/h3 headings."""
    entries = []
    for level, anchor, inner in _HEADING.findall(page.split(TOC_PLACEHOLDER, 1)[-1]):
        text = html.unescape(_TAG.sub("", inner)).replace("¶", "").strip()
        if text:
            entries.append(f'<li class="toc-{level}"><a href="#{anchor}">{html.escape(text)}</a></li>')
    contents = html.escape(_("Contents"))
    toc = (f'<nav class="toc"><p class="toc-title">{contents}</p><ol>' + "".join(entries) + "</ol></nav>"
           if entries else "")
    return page.replace(TOC_PLACEHOLDER, toc, 1)


def write_index(path: Path, *, cover: dict, reports: list[dict], tables: list[str], actions: list[dict] = (),
                suppression: list[dict] = ()) -> None:
    """index.html in the bundle's language: the cover (client, period, source, generated_at, version), the
    audit summary (`actions` and `suppression`, see audit_summary.py) and one line per report (status,
    headline or error, link).

    `reports`: dicts with name, status, html (file name or None), log, headline, error, reason.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(["html", "j2"]))
    env.globals.update(_=_, ngettext=ngettext, severity_word=severity_word, number=language.number,
                       status_word=lambda status: _(STATUS_WORDS.get(status, status)))
    page = env.get_template("index_page.html.j2").render(
        **{k: cover[k] for k in ("client", "period", "source", "generated_at", "version")},
        language=language.active(), css=report_css(), tables=tables, actions=list(actions),
        suppression=list(suppression), reports=[{**r, "title": report_title(r["name"])} for r in reports])
    path.write_text(page, encoding="utf-8")
