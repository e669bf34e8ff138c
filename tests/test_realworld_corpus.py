"""The classifiers on the real-world corpus in tests/data/realworld (sources and labels: its README).

The figures asserted here are the ones the README quotes; they are measured on material nobody on
the team wrote, labelled by us before the rules were revised.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mailaudit.analyses.bounces import HARD, SENDER_BLOCK, SENDER_CONFIG, SENDER_SIDE, SOFT, UNKNOWN, classify
from mailaudit.analyses.mail_clients import SCANNER, classify_user_agent, report_class

CORPUS = Path(__file__).parent / "data" / "realworld"
RECIPIENT_CLASSES = (HARD, SOFT, SENDER_BLOCK)


def _three(bounce_class: str) -> str:
    """The three recipient classes: a failure of our own set-up counts with the blocks of our mail."""
    return SENDER_BLOCK if bounce_class == SENDER_CONFIG else bounce_class


@pytest.fixture(scope="module")
def bounces() -> list[dict]:
    rows = list(csv.DictReader(open(CORPUS / "bounces.csv", encoding="utf-8", newline="")))
    for row in rows:
        verdict = classify(row["dsn"] or None, int(row["smtp_code"]) if row["smtp_code"] else None, row["text"],
                           row["status"])
        row["got"], row["rule"] = verdict.bounce_class, verdict.rule
    return rows


def test_corpus_size_and_coverage(bounces):
    assert len(bounces) >= 300
    providers = Counter(row["provider"] for row in bounces)
    for provider in ("gmail", "microsoft", "yahoo", "apple", "mailru", "yandex", "rambler", "gateway", "mta"):
        assert providers[provider] >= 3, provider
    labels = Counter(row["label"] for row in bounces)
    assert labels[SENDER_CONFIG] >= 50 and labels[SENDER_BLOCK] >= 50
    assert Counter(row["status"] for row in bounces)["deferred"] >= 30


def test_agreement_on_the_three_recipient_classes(bounces):
    labelled = [row for row in bounces if row["label"] != UNKNOWN]
    agree = sum(_three(row["got"]) == _three(row["label"]) for row in labelled)
    assert agree / len(labelled) >= 0.95


def test_unknown_share(bounces):
    assert sum(row["got"] == UNKNOWN for row in bounces) / len(bounces) <= 0.05


@pytest.mark.parametrize("label", RECIPIENT_CLASSES)
def test_recall_per_class(bounces, label):
    rows = [row for row in bounces if _three(row["label"]) == label]
    recall = sum(_three(row["got"]) == label for row in rows) / len(rows)
    assert recall >= 0.93, f"{label}: {recall:.3f}"


def test_no_deferral_and_no_sender_side_refusal_is_hard(bounces):
    assert [row["id"] for row in bounces if row["status"] == "deferred" and row["got"] == HARD] == []
    assert [row["id"] for row in bounces if row["label"] in SENDER_SIDE and row["got"] == HARD] == []


@pytest.fixture(scope="module")
def user_agents() -> list[dict]:
    return yaml.safe_load(open(CORPUS / "user_agents.yaml", encoding="utf-8"))


def test_user_agents_classified_right(user_agents):
    assert len(user_agents) >= 100
    right = [ua for ua in user_agents
             if (report_class(classify_user_agent(ua["ua"])), classify_user_agent(ua["ua"]).client)
             == (ua["class"], ua["client"])]
    assert len(right) / len(user_agents) >= 0.90


def test_every_scanner_is_a_scanner(user_agents):
    missed = [ua["ua"] for ua in user_agents if ua["class"] == SCANNER and classify_user_agent(ua["ua"]).hit_class != SCANNER]
    assert missed == []
