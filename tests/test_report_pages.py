"""Every report page of a demo bundle reads as a report: no console text, answer first, human labels,
sortable tables, real alternative text, plain sentences."""
from __future__ import annotations

import html
import json
import re

import nbformat
import pytest

from mailaudit.report.params import REPORT_NAMES

CONSOLE = re.compile(r"<pre\b|output_stream|output_stdout|output_stderr|output_error|Traceback|"
                     r"(User|Future|Deprecation|Runtime|Pandas)Warning|\bWarning:|\d+%\|[█▏▎▍▌▋▊▉ ]*\||it/s\]|cell/s",
                     re.I)
RAW_CODE = re.compile(r"\b(b_[a-z]+_[a-z_]+|[A-Z]+_[A-Z_]+|STATUS|TRACK_CLICK|SOURCE_ID|TYPE_ID)\b")
TAG = re.compile(r"<[^>]+>")


def text(fragment: str) -> str:
    return html.unescape(TAG.sub("", fragment)).strip()


@pytest.fixture(scope="module")
def pages(demo_bundle):
    return {name: (demo_bundle / f"{name}.html").read_text(encoding="utf-8") for name in REPORT_NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_no_console_text_warning_or_traceback_in_the_page(pages, report):
    page = re.sub(r"<(style|script)\b.*?</\1>", "", pages[report], flags=re.S)
    found = CONSOLE.search(re.sub(r'src="data:image/png;base64,[^"]+"', "", page))
    assert not found, f"{report}: {found.group(0)!r} around {page[max(0, found.start() - 200):found.end() + 200]!r}"


@pytest.mark.slow
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_the_executed_notebook_wrote_no_stream_and_no_error(demo_bundle, report):
    nb = nbformat.read(demo_bundle / f"{report}.ipynb", as_version=4)
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]
    stray = [(i, o.get("name", o.output_type), str(o.get("text", o.get("evalue", "")))[:200])
             for i, o in outputs if o.output_type in ("stream", "error")]
    assert not stray, f"{report}: {stray}"


@pytest.mark.slow
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_findings_come_first_and_the_method_last(pages, report):
    page = pages[report].split('id="notebook"', 1)[1]
    first_finding = page.find('class="finding ')
    assert first_finding >= 0, f"{report}: no finding shown"
    for evidence in ("<img", "<table"):
        position = page.find(evidence)
        assert position < 0 or first_finding < position, f"{report}: {evidence} before the first finding"
    headings = [text(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page, re.S)]
    assert headings[-1].rstrip("¶").strip() == "Appendix", f"{report}: sections {headings}"


@pytest.mark.slow
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_every_table_column_has_a_human_label(pages, report):
    tables = re.findall(r"<table\b.*?</table>", pages[report], re.S)
    assert tables, f"{report}: no table"
    for table in tables:
        assert re.search(r'<table[^>]*class="[^"]*\bsortable\b|<table[^>]*class=\'[^\']*\bsortable\b', table), \
            f"{report}: a table that does not sort: {table[:200]}"
        for header in re.findall(r"<thead>.*?</thead>", table, re.S):
            for cell in re.findall(r"<th\b[^>]*>(.*?)</th>", header, re.S):
                label = text(cell)
                assert label and "_" not in label and not RAW_CODE.search(label), f"{report}: column {label!r}"
        for cell in re.findall(r"<td\b[^>]*>(.*?)</td>", table, re.S):
            assert text(cell) not in ("True", "False", "nan", "NaN", "None"), f"{report}: cell {text(cell)!r}"


@pytest.mark.slow
@pytest.mark.parametrize("report", REPORT_NAMES)
def test_every_chart_has_real_alternative_text(pages, report):
    images = re.findall(r"<img\b[^>]*>", pages[report])
    assert images, f"{report}: no chart"
    for image in images:
        alt = re.search(r'alt="([^"]*)"', image)
        assert alt and len(alt.group(1)) > 20 and "No description" not in alt.group(1), f"{report}: {image[-300:]}"


@pytest.mark.slow
def test_sentences_are_plain_language(demo_bundle):
    summary = json.loads((demo_bundle / "summary.json").read_text(encoding="utf-8"))
    for name, report in summary["reports"].items():
        sentences = [report.get("headline") or ""] + [
            " ".join((f.get("title", ""), f.get("detail", ""), f.get("fix", ""))) for f in report.get("findings", [])]
        for sentence in sentences:
            assert not re.search(r"\bp\s*=|p-value|adjusted p", sentence), f"{name}: {sentence}"
            assert not RAW_CODE.search(sentence.replace("OnAfterRecipientUnsub", "")), f"{name}: {sentence}"
            assert not re.search(r"\b(True|False)\b", sentence), f"{name}: {sentence}"


@pytest.mark.slow
def test_every_finding_that_asks_for_action_says_what_to_do(demo_bundle):
    summary = json.loads((demo_bundle / "summary.json").read_text(encoding="utf-8"))
    for name, report in summary["reports"].items():
        for finding in report.get("findings", []):
            if finding["severity"] in ("high", "medium"):
                assert finding.get("fix"), f"{name}: {finding['title']}"


@pytest.mark.slow
def test_pages_sort_with_one_inline_script_and_fetch_nothing(pages):
    for name, page in pages.items():
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert scripts == ["<script>"], f"{name}: {scripts}"
        assert "sortable" in page
