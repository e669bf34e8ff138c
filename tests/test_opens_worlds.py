"""open_inflation on a demo world it was not built on: link-scanning gateways in front of company
mailboxes (b2b_gateways) click every link minutes after delivery. Their clicks are the model's machine
clicks, so the database route does not count them as people's (with a click rule of its own --
clicks after 10 s are people's -- it read 65-105% here)."""

from __future__ import annotations

from datetime import date

from opens_fixtures import built_model

from mailaudit.analyses.opens import analyse_opens
from mailaudit.period import Period


def test_gateway_clicks_are_not_people_on_the_database_route(tmp_path):
    model, truth, _ = built_model(tmp_path, with_access_log=False, contacts=3000, seed=1, world="b2b_gateways")
    try:
        period = Period(*(date.fromisoformat(truth["parameters"]["period"][k]) for k in ("start", "end")))
        figures = analyse_opens(model, period, {"scanner_seconds": 10}).figures
        machine_clicks = model.scalar("SELECT sum(clicks - human_clicks) FROM sends WHERE delivered")
    finally:
        model.close()
    planted = truth["opens"]["human_open_rate"]
    assert machine_clicks > 0
    assert figures["evidence"] == "database"
    assert figures["human_open_rate"] < figures["raw_open_rate"]
    assert abs(figures["human_open_rate"] - planted) <= 0.05
    low, high = figures["human_open_rate_ci"]
    assert low <= planted <= high
