"""ReportContext: what notebooks record reaches the parts file, safely typed and masked."""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pandas as pd
import pytest

from mailaudit.report.context import ReportContext, json_safe, mask_text, read_parts
from report_helpers import empty_bitrix_sqlite, write_params


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILAUDIT_WORKDIR", raising=False)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "p.yaml", db)
    context = ReportContext.open("list_hygiene", params, tmp_path / "bundle")
    yield context
    context.close()


def parts(ctx):
    return read_parts(ctx.out_dir)["list_hygiene"]


def test_open_gives_params_period_and_the_snapshots_model(ctx, tmp_path):
    assert ctx.params.client == "Test shop"
    assert ctx.period.label == "2026-01-01 – 2026-03-31"
    assert ctx.model.has("b_sender_contact")
    assert ctx.sql("SELECT count(*) AS n FROM contacts")["n"].iloc[0] == 0
    assert ctx.can_run and ctx.capability.ok
    assert ctx.source["dialect"] == "sqlite"
    # interactively, the parameters' default snapshot is made on first use, beside the working folder
    assert (tmp_path / "snapshots" / "test-shop.duckdb").is_file()


def test_the_model_is_read_only(ctx):
    with pytest.raises(Exception, match="read-only|read only"):
        ctx.sql("DELETE FROM contacts")


def test_record_merges_sections_with_json_safe_values(ctx):
    ctx.record("hygiene", {"contacts": np.int64(12), "rate": np.float64("nan"), "nested": {"a": 1}})
    ctx.record("hygiene", {"hard_bounce": 3, "nested": {"b": np.bool_(True)}})
    assert parts(ctx)["sections"] == {"hygiene": {"contacts": 12, "rate": None, "hard_bounce": 3,
                                                  "nested": {"a": 1, "b": True}}}


def test_record_refuses_the_runners_sections(ctx):
    with pytest.raises(ValueError, match="written by the runner"):
        ctx.record("reports", {"x": 1})


def test_notes_headline_and_findings_are_kept_and_masked(ctx):
    ctx.note("3 addresses like ivan.petrov@mail.ru bounced")
    ctx.headline("12 contacts to suppress")
    ctx.finding("high", "Sends after a hard bounce", "to anna@yandex.ru and 4 more")
    with pytest.raises(ValueError):
        ctx.finding("critical", "x")
    stored = parts(ctx)
    assert stored["notes"] == ["3 addresses like i***@mail.ru bounced"]
    assert stored["headline"] == "12 contacts to suppress"
    assert stored["findings"] == [{"severity": "high", "title": "Sends after a hard bounce",
                                   "detail": "to a***@yandex.ru and 4 more", "anchor": "finding-1"}]
    ctx.finding("medium", "Unsubscribed people still mailed", count=np.int64(40), of=1200, unit="contacts",
                stake="complaints from olga@mail.ru's peers", fix="exclude them", evidence="suppress_unsubscribed.csv")
    assert parts(ctx)["findings"][-1] == {
        "severity": "medium", "title": "Unsubscribed people still mailed", "detail": "", "count": 40, "of": 1200,
        "unit": "contacts", "stake": "complaints from o***@mail.ru's peers", "fix": "exclude them",
        "evidence": "suppress_unsubscribed.csv", "anchor": "finding-2"}


def test_tables_are_masked_suppression_files_of_a_run_are_not(ctx, tmp_path):
    df = pd.DataFrame({"email": ["Ivan.Petrov@mail.ru", None], "sends": [3, 4]})
    # as `mailaudit run` opens it: the snapshot it made is named
    run = ReportContext.open("list_hygiene", tmp_path / "p.yaml", tmp_path / "run",
                             tmp_path / "snapshots" / "test-shop.duckdb")
    assert run.save_table("bounced", df) == "tables/bounced.csv"
    assert (run.out_dir / "tables" / "bounced.csv").read_text().splitlines()[1] == "I***@mail.ru,3"
    assert run.write_suppression("hard_bounce", df) == "suppress_hard_bounce.csv"
    assert "Ivan.Petrov@mail.ru" in (run.out_dir / "suppress_hard_bounce.csv").read_text()
    stored = read_parts(run.out_dir)["list_hygiene"]
    assert stored["tables"] == ["tables/bounced.csv"]
    assert stored["suppression_files"] == {"hard_bounce": "suppress_hard_bounce.csv"}
    with pytest.raises(ValueError):
        run.save_table("../escape", df)
    run.close()


def test_an_interactive_run_masks_suppression_files_and_says_where_it_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILAUDIT_WORKDIR", raising=False)
    params = write_params(tmp_path / "p.yaml", empty_bitrix_sqlite(tmp_path / "shop.sqlite"))
    context = ReportContext.open("list_hygiene", params, tmp_path / "mine")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and str(tmp_path / "mine") in lines[0] and "addresses masked" in lines[0]
    context.write_suppression("hard_bounce", pd.DataFrame({"email": ["Ivan.Petrov@mail.ru"]}))
    text = (tmp_path / "mine" / "suppress_hard_bounce.csv").read_text(encoding="utf-8-sig")
    assert "I***@mail.ru" in text and "Ivan.Petrov" not in text
    context.close()


def test_csv_files_carry_a_byte_order_mark_unless_turned_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILAUDIT_WORKDIR", raising=False)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    df = pd.DataFrame({"город": ["Москва"]})
    for extra, bom in (("", True), ("report: {csv_bom: false}\n", False)):
        params = write_params(tmp_path / "p.yaml", db, extra)
        context = ReportContext.open("segments", params, tmp_path / f"out-{bom}")
        for written in (context.out_dir / context.save_table("cities", df),
                        context.out_dir / context.write_suppression("cities", df)):
            assert written.read_bytes().startswith("\ufeff".encode("utf-8")) is bom
            assert written.read_text(encoding="utf-8-sig").startswith("город")
        context.close()


def test_show_masks_and_formats(ctx, monkeypatch):
    shown = []
    monkeypatch.setattr("mailaudit.report.context.display", lambda obj: shown.append(obj.data))
    ctx.show(pd.DataFrame({"email": ["ivan@mail.ru"], "sends": [1234567], "rate": [0.0512]}),
             "Top senders", percent=["rate"])
    html = shown[0]
    assert "i***@mail.ru" in html and "ivan@mail.ru" not in html
    assert "1,234,567" in html and "5.1%" in html and "Top senders" in html


def test_mask_helpers():
    assert mask_text("write to ivan@mail.ru or a.b+c@sub.example.org.") == \
        "write to i***@mail.ru or a***@sub.example.org."
    assert json_safe({"x": [np.float32(1.5), float("inf"), pd.NA, pd.Timestamp("2026-01-02")]}) == \
        {"x": [1.5, None, None, "2026-01-02T00:00:00"]}
    assert math.isclose(json.loads(json.dumps(json_safe(np.array([0.25]))))[0], 0.25)


def test_interactive_defaults_resolve_from_the_notebooks_folder(tmp_path, monkeypatch):
    """Opened from JupyterLab, cwd is notebooks/ and params paths are relative to the repo root."""
    monkeypatch.delenv("MAILAUDIT_WORKDIR", raising=False)
    (tmp_path / "data").mkdir()
    empty_bitrix_sqlite(tmp_path / "data" / "shop.sqlite")
    (tmp_path / "params").mkdir()
    write_params(tmp_path / "params" / "demo.yaml", "data/shop.sqlite")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    context = ReportContext.open("segments", "../params/demo.yaml", "../reports/interactive")
    assert context.out_dir == tmp_path / "reports" / "interactive"
    assert context.params.database == {"sqlite": tmp_path / "data" / "shop.sqlite"}
    context.close()


def test_address_columns_are_masked_whole_even_when_invalid(ctx, monkeypatch):
    shown = []
    monkeypatch.setattr("mailaudit.report.context.display", lambda obj: shown.append(obj.data))
    df = pd.DataFrame({"contact_id": [708, 977], "email": ["irina527outlook.com", "svetlana@@rambler.ru"],
                       "issue": ["invalid_syntax", "invalid_syntax"]})
    ctx.show(df)
    assert "irina527outlook.com" not in shown[0] and "svetlana" not in shown[0]
    assert re.search(r'<td class="num"[^>]*>708</td>', shown[0]) and re.search(r'<td class="text"[^>]*>invalid_syntax</td>', shown[0])
    ctx.save_table("issues", df)
    assert "irina" not in (ctx.out_dir / "tables" / "issues.csv").read_text()


def test_once_computes_a_shared_result_once_per_run(ctx, tmp_path, monkeypatch):
    from mailaudit.report.context import RUN_SHARED_ENV

    calls = []

    def compute(value):
        calls.append(value)
        return {"value": value, "array": np.arange(3)}

    assert ctx.once("evidence", lambda: compute(1), "key")["value"] == 1   # no run folder: computed
    assert ctx.once("evidence", lambda: compute(1), "key")["value"] == 1
    assert calls == [1, 1]
    monkeypatch.setenv(RUN_SHARED_ENV, str(tmp_path / "shared"))
    first = ctx.once("evidence", lambda: compute(2), "key")
    again = ctx.once("evidence", lambda: compute(3), "key")   # another kernel of the run: read, not computed
    other = ctx.once("evidence", lambda: compute(4), "other key")
    assert (first["value"], again["value"], other["value"]) == (2, 2, 4)
    assert calls == [1, 1, 2, 4] and list(again["array"]) == [0, 1, 2]


def test_once_makes_a_second_process_wait_for_the_first(tmp_path):
    """Two kernels asking at the same moment: one computes (slowly), the other waits and reads its result.
    (Each writes its own bundle folder, as two reports of a run write their own parts files.)"""
    import subprocess
    import sys
    import textwrap

    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "p.yaml", db)
    script = textwrap.dedent(f"""
        import os, sys, time
        from mailaudit.report.context import ReportContext
        ctx = ReportContext.open("list_hygiene", {str(params)!r}, {str(tmp_path)!r} + "/bundle-" + sys.argv[1])

        def compute():
            with open({str(tmp_path / "computed.txt")!r}, "a") as log:
                log.write(sys.argv[1] + "\\n")
            time.sleep(2)
            return sys.argv[1]

        print(ctx.once("slow", compute, "key"))
        ctx.close()
    """)
    env = {**os.environ, "MAILAUDIT_RUN_SHARED": str(tmp_path / "shared")}
    env.pop("MAILAUDIT_WORKDIR", None)
    snapshot = subprocess.run([sys.executable, "-c", script, "warm"], cwd=tmp_path, env=env, capture_output=True,
                              text=True)   # makes the snapshot both kernels then read
    assert snapshot.returncode == 0, snapshot.stderr
    (tmp_path / "computed.txt").unlink()
    env["MAILAUDIT_RUN_SHARED"] = str(tmp_path / "shared-2")
    kernels = [subprocess.Popen([sys.executable, "-c", script, name], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    finished = [k.communicate(timeout=120) for k in kernels]
    assert [k.returncode for k in kernels] == [0, 0], [err[-2000:] for _out, err in finished]
    outputs = [out.strip().splitlines()[-1] for out, _err in finished]
    computed = (tmp_path / "computed.txt").read_text().split()
    assert len(computed) == 1 and outputs == computed * 2
