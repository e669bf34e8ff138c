"""The open_inflation report's wording in Russian and English, on made-up figures: every finding (the ones
the demo does not raise too), the headline with a range of estimators, the checks' sentences, the by-client
view and the "client not identified" sentence. No message may be missing from the Russian catalog."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mailaudit.analyses import opens
from mailaudit.narrative import language
from mailaudit.narrative import open_inflation as words


@pytest.fixture
def missing(tmp_path, monkeypatch):
    path = tmp_path / "missing.txt"
    monkeypatch.setenv(language.MISSING_ENV, str(path))
    yield lambda: sorted(set(path.read_text(encoding="utf-8").splitlines())) if path.exists() else []


def _result() -> SimpleNamespace:
    check = opens._band_check("implied_click_to_open", 2.5, np.full(100, 2.5), opens.CTOR_BAND,
                              language._("the click-to-open ratio it implies ÷ that of the people seen loading images"))
    ceiling = opens.Check("ceiling", 0.31, False, "x")
    estimators = {
        "database": {"human_open_rate": 0.24, "ci": [0.23, 0.25], "passes": True, "diagnostics": []},
        "exclusion": {"human_open_rate": 0.31, "ci": [0.29, 0.33], "passes": False,
                      "diagnostics": [check.as_dict(), ceiling.as_dict()]},
    }
    figures = {
        "evidence": "database", "delivered": 21_000, "unique_opens": 8_400, "raw_open_rate": 0.4,
        "human_open_rate": 0.24, "human_open_rate_ci": [0.23, 0.25], "machine_open_share": 0.4,
        "apple_share": 0.3, "human_open_ceiling": 0.42, "estimator_spread_pp": 7.0,
        "by_client": {"apple": {"delivered": 6_300, "raw_open_rate": 0.9, "human_open_rate": 0.3,
                                "inflation_pp": 60.0}},
        "estimators": estimators, "headline_estimator": "database",
        "headline_choice": {"estimator": "database", "reason": language._("it is the only estimator whose checks all pass"),
                            "range": [0.24, 0.31], "spread_pp": 7.0, "failing": {"exclusion": [check.says]}},
    }
    by_posting = pd.DataFrame({"raw_open_rate": [0.5, 0.4, 0.3], "human_open_rate": [0.2, 0.3, 0.25]})
    return SimpleNamespace(figures=figures, by_posting=by_posting)


def test_russian_findings_headline_and_checks_are_translated(missing):
    with language.using("ru"):
        result = _result()
        found = {f.key: f for f in words.findings(result)}
        line = opens.headline(result)
    assert missing() == []
    assert set(found) == {"inflation", "apple", "spread", "ceiling", "ranking"}
    assert found["inflation"].title == "Open Rate в Битриксе завышает открытия людьми на 16,0 п. п."
    assert "вне 0,60–1,67" in found["spread"].detail and "«перенос»" in found["spread"].detail
    assert found["ceiling"].title == "Оценка «перенос» ограничена записанным значением"
    assert found["ranking"].title == "Без машинных открытий меняется место у 3 из последних 3 рассылок"
    assert "24,0\u00a0% до 31,0\u00a0%" in line and "«перенос»" in line


def test_every_finding_that_asks_for_action_says_what_is_at_stake():
    for language_name in ("en", "ru"):
        with language.using(language_name):
            for finding in words.findings(_result()):
                if finding.fix:
                    assert finding.extra.get("stake"), (language_name, finding.key)


def test_english_headline_keeps_its_sentences():
    result = _result()
    line = opens.headline(result)
    assert line.startswith("Open Rate 40.0%, of which people about 24.0% (95% interval 23.0%–25.0%): 40% of opens")
    assert "24.0% to 31.0%" in line and "exclusion assumes contacts behind a prefetching proxy" in line
    assert line.endswith("The headline's estimator was chosen because it is the only estimator whose checks all pass.")


def _by_client() -> pd.DataFrame:
    return pd.DataFrame({"client": ["apple", "gmail", "unknown"], "contacts": [10, 21, 5],
                         "delivered": [100, 200, 50], "opened": [90, 0, 3], "raw_open_rate": [0.9, 0.0, 0.06],
                         "human_open_rate": [0.3, 0.0, 0.0], "inflation_pp": [60.0, 0.0, 6.0]})


def test_clients_have_reader_names_and_no_opens_is_no_inflation(missing):
    with language.using("ru"):
        view = words.clients_view(_by_client())
        sentence = words.unknown_client_sentence(_by_client())
    assert missing() == []
    assert list(view["client"]) == ["Apple Mail", "Gmail", "Клиент не определён"]
    assert pd.isna(view["inflation_pp"].iloc[1])
    assert sentence.startswith("«Клиент не определён» — это 5 контактов (доставлено писем: 50)")


def test_a_client_label_nobody_opened_in_joins_the_unknown_client():
    """Contacts labelled by their address's provider alone, none of whom opened, are no mail client: they are
    counted with the unknown client (delivered letters still add up)."""
    n_features, slots = len(opens.FEATURES), len(opens.GROUPS) + 1
    point = np.zeros((len(opens.CLIENTS), slots, n_features))
    delivered, opened = opens.FEATURES.index("delivered"), opens.FEATURES.index("opened")
    mailru, unknown = opens.CLIENT_CODE["mail.ru"], opens.UNKNOWN_CLIENT
    point[opens.APPLE, opens.PREFETCH, [delivered, opened]] = [100, 90]
    point[mailru, opens.REFERENCE, delivered] = 40
    point[unknown, opens.REFERENCE, [delivered, opened]] = [10, 2]
    boot = np.repeat(point[None], 20, axis=0)
    client = np.array([opens.APPLE] * 3 + [mailru] * 4 + [unknown] * 2)
    table = opens._by_client(point, boot, client, "database").set_index("client")
    assert "mail.ru" not in table.index
    assert table.loc["unknown", "delivered"] == 50 and table.loc["unknown", "contacts"] == 6
    assert table["delivered"].sum() == 150
