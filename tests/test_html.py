"""Report HTML: offline (no script, CDN or web font), no code, no parameters, a cover and a contents list."""
from __future__ import annotations

import os
import re

import pytest

import mailaudit
from mailaudit.report.html import insert_toc, TOC_PLACEHOLDER
from mailaudit.report.runner import run_reports
from report_helpers import empty_bitrix_sqlite, write_params, write_report_notebook

CODE_MARKER = "UNIQUE_CODE_MARKER_93817"
BODY = f"""
import matplotlib.pyplot as plt
import pandas as pd
{CODE_MARKER} = 1
ctx.finding("medium", "Half the letters lack utm_medium", "12 of 24 letters")
ctx.show(pd.DataFrame({{"letters": [1234567], "share": [0.25]}}), "Letters", percent=["share"])
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
plt.show()
from mailaudit.plots.common import figure, finish, show
fig, ax = figure("Sends per month", "recipient rows with DATE_SENT in the period")
ax.bar(["Jan", "Feb"], [3, 4])
show(finish(fig))
"""
MARKDOWN = "# Tracking\n\nIntro.\n\n## Inventory of tables\n\nText.\n\n$x^2$ inline maths stays text."


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        db = empty_bitrix_sqlite(root / "shop.sqlite")
        params = write_params(root / "p.yaml", db, "reports: [data_and_tracking, list_hygiene]\n")
        write_report_notebook(root / "nb", "data_and_tracking", BODY, markdown=MARKDOWN)
        write_report_notebook(root / "nb", "list_hygiene", "1 / 0")
        result = run_reports(params, root / "out", notebooks_dir=root / "nb", progress=False)
    finally:
        os.chdir(cwd)
    return result.out_dir


def pages(bundle):
    return {p.name: p.read_text(encoding="utf-8") for p in bundle.glob("*.html")}


def test_pages_make_no_network_fetch(bundle):
    for name, page in pages(bundle).items():
        page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=\s]+", "", page)
        assert not re.search(r"<script[^>]+src=[\"']?https?:", page, re.I), name
        assert all(tag == "<script>" for tag in re.findall(r"<script\b[^>]*>", page, re.I)), name   # inline only
        assert "require.js" not in page and "requirejs" not in page.lower(), name
        assert "mathjax" not in page.lower(), name
        assert "cdn" not in page.lower(), name
        assert "@import" not in page and "@font-face" not in page, name
        assert not re.search(r"<link[^>]+href=[\"']?https?:", page, re.I), name
        assert not re.search(r"url\(\s*['\"]?https?:", page), name


def test_no_code_and_no_parameters_cell(bundle):
    page = pages(bundle)["data_and_tracking.html"]
    assert CODE_MARKER not in page
    assert "ReportContext" not in page
    assert "params_path" not in page and "out_dir" not in page
    assert "In&nbsp;[" not in page and "Out[" not in page


def test_charts_are_inline_png(bundle):
    page = pages(bundle)["data_and_tracking.html"]
    assert len(re.findall(r'<img[^>]* src="data:image/png;base64,', page)) == 2
    # the kit's charts carry their title and subtitle as alternative text
    assert '<img alt="Sends per month. recipient rows with DATE_SENT in the period"' in page


def test_cover_and_contents(bundle):
    page = pages(bundle)["data_and_tracking.html"]
    assert "Test shop" in page
    assert "2026-01-01 – 2026-03-31" in page
    assert "SQLite, database shop.sqlite, current sender layout" in page
    assert f"mailaudit {mailaudit.__version__}" in page
    assert "Generated" in page
    toc = re.search(r'<nav class="toc">(.*?)</nav>', page, re.S).group(1)
    assert 'href="#Inventory-of-tables"' in toc and "Second section" in toc and "A subsection" in toc
    assert 'id="Inventory-of-tables"' in page


def test_findings_and_tables_are_rendered(bundle):
    page = pages(bundle)["data_and_tracking.html"]
    assert "finding-medium" in page and "Half the letters lack utm_medium" in page
    assert "1,234,567" in page and "25.0%" in page


def test_failed_report_page_says_so_in_one_paragraph(bundle):
    page = pages(bundle)["list_hygiene.html"]
    assert re.findall(r'<p class="cover-failed">(.*?)</p>', page, re.S) == [
        "This report failed: ZeroDivisionError: division by zero (cell 4). The sections below are the "
        'part that ran. The full error is in <a href="logs/list_hygiene.log">logs/list_hygiene.log</a>.']
    body = page.split("</header>", 1)[1]
    assert "division by zero" not in body and "Traceback" not in body and "ZeroDivisionError" not in body
    assert "An Exception was encountered" not in page
    log = (bundle / "logs" / "list_hygiene.log").read_text(encoding="utf-8")
    assert "ZeroDivisionError" in log and "----> 1 1 / 0" in log and "\x1b[" not in log


def test_stderr_of_cells_goes_to_the_log_not_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "p.yaml", db, "reports: [data_and_tracking]\n")
    write_report_notebook(tmp_path / "nb", "data_and_tracking",
                          "import sys, warnings\nprint('shown to the reader')\n"
                          "warnings.warn('internal detail 4711')\nprint('to stderr 4712', file=sys.stderr)")
    out = run_reports(params, tmp_path / "out", notebooks_dir=tmp_path / "nb", progress=False).out_dir
    page = (out / "data_and_tracking.html").read_text(encoding="utf-8")
    assert "shown to the reader" in page and "4711" not in page and "4712" not in page
    log = (out / "logs" / "data_and_tracking.log").read_text(encoding="utf-8")
    assert "UserWarning: internal detail 4711" in log and "to stderr 4712" in log


def test_index_links_every_report_with_its_status(bundle):
    index = pages(bundle)["index.html"]
    assert 'href="data_and_tracking.html"' in index and 'href="list_hygiene.html"' in index
    assert "status-ok" in index and "status-failed" in index
    assert "Failed: ZeroDivisionError: division by zero" in index
    assert 'href="summary.json"' in index
    assert "SQLite, database shop.sqlite" in index


def test_insert_toc_lists_h2_and_h3_only():
    page = (f"<h1 id='t'>T</h1>{TOC_PLACEHOLDER}"
            '<h2 id="A-b">A &amp; b<a class="anchor-link" href="#A-b">¶</a></h2><h3 id="C">C</h3><h4 id="D">D</h4>')
    out = insert_toc(page)
    assert '<li class="toc-2"><a href="#A-b">A &amp; b</a></li>' in out
    assert '<li class="toc-3"><a href="#C">C</a></li>' in out
    assert "#D" not in out.split("</nav>")[0]
    assert insert_toc(f"{TOC_PLACEHOLDER}<p>no headings</p>") == "<p>no headings</p>"
