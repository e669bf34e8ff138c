"""One definition of a machine click (model/sql/machine_clicks.sql), checked on worlds it was not written from:
security gateways clicking every link are removed, people's clicks are kept -- with the access log and without."""
from __future__ import annotations

import pytest

from mailaudit.demo import build_demo


@pytest.fixture(scope="module", params=["b2b_gateways", "images_off", "baseline"])
def world(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    built = build_demo(sqlite_path=root / "demo.sqlite", contacts=3000, seed=4, world=request.param,
                       logs_dir=root / "logs")
    import json
    return request.param, built, json.loads(built.truth.read_text())


@pytest.mark.parametrize("with_logs", [True, False], ids=["access-log", "database-only"])
def test_machine_clicks_removed_and_peoples_kept(world, with_logs, demo_params, model_of, tmp_path):
    name, built, truth = world
    params = {"database": {"sqlite": str(built.database)}, "with_logs": False, "period": truth["parameters"]["period"]}
    if with_logs:
        params["logs"] = {"delivery": [built.logs["postfix"]], "access": [built.logs["access"]]}
    model = model_of(demo_params(**params))
    found = model.sql("SELECT sum(clicks)::INT AS rows, sum(human_clicks)::INT AS human, "
                      "count(*) FILTER (WHERE delivered AND human_clicks > 0)::INT AS human_sends FROM sends").iloc[0]
    clicks = truth["clicks"]
    assert found["rows"] == clicks["click_rows"]
    machine = sum(clicks["machine_click_rows"].values())
    if machine == 0:
        assert found["human"] == clicks["human_click_rows"], "a person's click was taken for a machine's"
    else:
        assert abs(found["human"] - clicks["human_click_rows"]) <= 0.02 * clicks["human_click_rows"]
        assert abs(found["rows"] - found["human"] - machine) <= 0.02 * machine
    assert abs(found["human_sends"] - clicks["sends_human_clicked"]) <= 0.02 * max(clicks["sends_human_clicked"], 50)
    reasons = set(model.sql("SELECT DISTINCT reason FROM machine_clicks")["reason"])
    assert ("access_log" in reasons) == (with_logs and machine > 0)
