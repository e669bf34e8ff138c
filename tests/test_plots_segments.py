"""Display helpers of the segments report: readable ratio ticks and small percentages."""

import numpy as np
import pandas as pd

from mailaudit.plots import segments as charts


def test_ratio_ticks_keep_one_and_never_crowd_a_wide_axis():
    ticks = charts._ratio_ticks(0.22, 4.5)
    assert 1.0 in ticks and all(0.22 <= t <= 4.5 for t in ticks)
    gaps = np.diff(np.log(ticks))
    assert gaps.min() >= (np.log(4.5) - np.log(0.22)) / 6 - 1e-12
    assert len(charts._ratio_ticks(0.9, 1.1)) >= 3          # a narrow axis still gets ticks beside 1×


def test_small_rates_keep_two_significant_digits_in_the_table():
    table = pd.DataFrame({"segment": ["a"], "complaint_rate": [0.000357], "complaint_rate_ci": [[0.000255, 0.0105]]})
    html = charts.sortable_table_html(table, "t", percent=("complaint_rate",), intervals=("complaint_rate_ci",))
    assert ">0.036% (0.026%–1.1%)<" in html          # the interval shares its rate's cell
    alone = charts.sortable_table_html(table.drop(columns="complaint_rate"), "t", intervals=("complaint_rate_ci",))
    assert ">0.026%–1.1%<" in alone
