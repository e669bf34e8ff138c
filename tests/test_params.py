"""Parameter validation: every problem is one clear line, found before anything runs."""
from __future__ import annotations

import datetime as dt

import pytest

from mailaudit.report.params import CREDENTIALS_MESSAGE, REPORT_NAMES, ParamsError, load_params

MINIMAL = "period: {start: 2026-01-01, end: 2026-03-31}\n"


def load(tmp_path, text: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_params(path, base_dir=tmp_path)


def error(tmp_path, text: str) -> str:
    with pytest.raises(ParamsError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_match_the_contract(tmp_path):
    params = load(tmp_path, MINIMAL, name="acme.yaml")
    assert params.period.start == dt.date(2026, 1, 1) and params.period.end == dt.date(2026, 3, 31)
    assert params.client == "acme"   # no client: the file's stem
    assert params.database is None
    assert params.logs == {"delivery": [], "access": []}
    assert params.hygiene == {"soft_bounce_streak": 3, "unsub_grace_hours": 48, "inactive_months": 6,
                              "inactive_min_sends": 5, "check_dns": False, "crm_unsub_field": None}
    assert params.conversion == {"open_window_days": 5, "click_window_days": 30, "cohort": "month",
                                 "followup_days": 3}
    assert params.privacy == {"mask_emails": True} and params.mask_emails
    assert params.segments == {"dimensions": ["list", "provider", "crm_source", "tenure", "client"],
                               "custom": [], "correction": "holm", "min_delivered": 500, "human_opens": True}
    assert params.opens == {"apple_ranges": None, "scanner_seconds": 10}
    assert params.run == {"cell_timeout_seconds": 1800, "parallel_reports": 1}
    assert params.report == {"csv_bom": True, "language": "en"} and params.csv_bom
    assert params.demo is False
    assert params.reports == list(REPORT_NAMES)


def test_given_values_override_defaults(tmp_path):
    params = load(tmp_path, MINIMAL + "client: Acme\nhygiene: {soft_bounce_streak: 4}\n"
                  "conversion: {cohort: week}\nprivacy: {mask_emails: false}\nreports: [segments]\n"
                  "segments: {correction: fdr_bh, custom: [{table: b_crm_contact, column: TYPE_ID}]}\n")
    assert params.client == "Acme"
    assert params.hygiene["soft_bounce_streak"] == 4 and params.hygiene["unsub_grace_hours"] == 48
    assert params.conversion["cohort"] == "week"
    assert params.mask_emails is False
    assert params.reports == ["segments"]
    assert params.segments["correction"] == "fdr_bh"
    assert params.segments["custom"] == [{"table": "b_crm_contact", "column": "TYPE_ID",
                                          "name": "b_crm_contact.TYPE_ID"}]


def test_unknown_top_level_key_names_the_allowed_keys(tmp_path):
    message = error(tmp_path, MINIMAL + "hygeine: {soft_bounce_streak: 3}\n")
    assert "'hygeine'" in message
    for key in ("client", "period", "database", "logs", "hygiene", "conversion", "privacy"):
        assert key in message


def test_unknown_nested_key_names_the_section_keys(tmp_path):
    message = error(tmp_path, MINIMAL + "conversion: {open_window: 5}\n")
    assert "conversion.open_window" in message
    assert "open_window_days" in message and "click_window_days" in message and "cohort" in message


@pytest.mark.parametrize("text", [
    "database: {url_env: 'mysql://reader:s3cret@db/bitrix'}\n",
    "database: {sqlite: 'postgresql://u:pw@h/db'}\n",
    "client: 'see mysql+pymysql://root:hunter22@10.0.0.1/sitemanager'\n",
    "# old: mysql://bitrix:Pa55word@localhost/sitemanager\n",
])
def test_a_url_with_a_password_anywhere_is_refused(tmp_path, text):
    message = error(tmp_path, MINIMAL + text)
    assert CREDENTIALS_MESSAGE in message
    for secret in ("s3cret", "pw@", "hunter22", "Pa55word"):
        assert secret not in message


def test_url_env_must_be_a_variable_name(tmp_path):
    assert "url_env" in error(tmp_path, MINIMAL + "database: {url_env: 'mysql://db/bitrix'}\n")
    assert "url_env" in error(tmp_path, MINIMAL + "database: {url_env: 'MY DB'}\n")
    params = load(tmp_path, MINIMAL + "database: {url_env: ACME_DB_URL}\n")
    assert params.database == {"url_env": "ACME_DB_URL"}


def test_database_needs_exactly_one_source(tmp_path):
    (tmp_path / "x.sqlite").write_bytes(b"")
    assert "exactly one" in error(tmp_path, MINIMAL + "database: {sqlite: x.sqlite, url_env: X}\n")
    assert "exactly one" in error(tmp_path, MINIMAL + "database: {}\n")


def test_start_after_end_is_refused(tmp_path):
    message = error(tmp_path, "period: {start: 2026-04-01, end: 2026-03-31}\n")
    assert "start 2026-04-01 is after end 2026-03-31" in message


@pytest.mark.parametrize("text, fragment", [
    ("client: x\n", "period: required"),
    ("period: {start: 2026-01-01}\n", "period.end: required"),
    ("period: {start: 2026-13-01, end: 2026-12-31}\n", "period.start: expected a date"),
    (MINIMAL + "conversion: {cohort: day}\n", "conversion.cohort: expected one of month, week"),
    (MINIMAL + "hygiene: {soft_bounce_streak: 0}\n", "hygiene.soft_bounce_streak: expected a positive integer"),
    (MINIMAL + "hygiene: {unsub_grace_hours: -1}\n", "positive integer"),
    (MINIMAL + "hygiene: {inactive_months: '6'}\n", "positive integer"),
    (MINIMAL + "hygiene: {inactive_min_sends: true}\n", "positive integer"),
    (MINIMAL + "privacy: {mask_emails: 'yes'}\n", "privacy.mask_emails: expected true or false"),
    (MINIMAL + "segments: {dimensions: [list, colour]}\n", "unknown value 'colour'"),
    (MINIMAL + "segments: {correction: bonferroni}\n", "holm, fdr_bh"),
    (MINIMAL + "segments: {custom: [{table: t}]}\n", "segments.custom[0].column"),
    (MINIMAL + "reports: [hygiene]\n", "unknown value 'hygiene'"),
    (MINIMAL + "run: {cell_timeout_seconds: 0}\n", "run.cell_timeout_seconds: expected a positive integer"),
    (MINIMAL + "run: {cell_timeout: 60}\n", "unknown key 'run.cell_timeout'; allowed keys in run: cell_timeout_seconds"),
    (MINIMAL + "hygiene: 3\n", "hygiene: expected a mapping"),
    ("- a\n- b\n", "expected a mapping"),
    ("period: [\n", "not valid YAML"),
])
def test_wrong_values_are_one_line_errors(tmp_path, text, fragment):
    assert fragment in error(tmp_path, text)


def test_missing_parameter_file(tmp_path):
    with pytest.raises(ParamsError, match="parameter file not found"):
        load_params(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shop.sqlite").write_bytes(b"")
    (tmp_path / "params").mkdir()
    path = tmp_path / "params" / "p.yaml"
    path.write_text(MINIMAL + "database: {sqlite: data/shop.sqlite}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_params(path).database == {"sqlite": tmp_path / "data" / "shop.sqlite"}


def test_missing_sqlite_file_is_an_error(tmp_path):
    assert "database.sqlite: file not found" in error(tmp_path, MINIMAL + "database: {sqlite: nope.sqlite}\n")


def test_log_globs_expand_rotated_files_sorted(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("maillog-20260201.gz", "maillog", "maillog-20260101.gz", "access.log"):
        (logs / name).write_text("")
    params = load(tmp_path, MINIMAL + "logs:\n  delivery: [logs/maillog*, logs/maillog]\n  access: logs/access.log\n")
    assert [p.name for p in params.logs["delivery"]] == ["maillog", "maillog-20260101.gz", "maillog-20260201.gz"]
    assert params.logs["access"] == [logs / "access.log"]


def test_missing_log_file_or_empty_glob_is_an_error(tmp_path):
    assert "logs.delivery: file not found" in error(tmp_path, MINIMAL + "logs: {delivery: [maillog]}\n")
    assert "no file matches 'access*.log'" in error(tmp_path, MINIMAL + "logs: {access: ['access*.log']}\n")
    assert "logs.access" in error(tmp_path, MINIMAL + "logs: {access: [3]}\n")


def test_apple_ranges_file_must_exist(tmp_path):
    assert "opens.apple_ranges: file not found" in error(tmp_path, MINIMAL + "opens: {apple_ranges: apple.csv}\n")
    (tmp_path / "apple.csv").write_text("cidr\n")
    assert load(tmp_path, MINIMAL + "opens: {apple_ranges: apple.csv}\n").opens["apple_ranges"] == tmp_path / "apple.csv"


def test_to_dict_is_plain_data(tmp_path):
    plain = load(tmp_path, MINIMAL).to_dict()
    assert plain["period"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert plain["hygiene"]["soft_bounce_streak"] == 3


def test_demo_and_csv_bom_are_booleans(tmp_path):
    params = load(tmp_path, MINIMAL + "demo: true\nreport: {csv_bom: false}\n")
    assert params.demo is True and params.csv_bom is False
    assert "demo: expected true or false" in error(tmp_path, MINIMAL + "demo: yes please\n")
    assert "report.csv_bom: expected true or false" in error(tmp_path, MINIMAL + "report: {csv_bom: 1}\n")
