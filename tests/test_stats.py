"""Intervals, clustered rate ratios and p-value adjustment against statsmodels on known tables."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from mailaudit.analyses import stats


def _rows(seed=3, contacts=2500, postings=10, ratio=1.4, mix=True, heterogeneity=0.6):
    """Recipient rows: posting effects, contact-specific propensity, a contact-level segment whose
    members get the strong postings more often when `mix`."""
    rng = np.random.default_rng(seed)
    segment = rng.random(contacts) < 0.3
    propensity = rng.gamma(heterogeneity, 1 / heterogeneity, contacts)
    frames = []
    for j in range(postings):
        rate = 0.04 + 0.02 * j
        share = np.where(segment, 0.05 + 0.1 * j if mix else 0.5, 0.5)
        sent = np.flatnonzero(rng.random(contacts) < share)
        mu = np.clip(rate * propensity[sent] * np.where(segment[sent], ratio, 1.0), 0, 1)
        frames.append(pd.DataFrame({"posting": j, "contact": sent, "segment": segment[sent].astype(int),
                                    "y": (rng.random(len(sent)) < mu).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def _totals(per_contact: pd.DataFrame, reference: str) -> stats.ClusterTotals:
    y, x = per_contact["y"], per_contact[reference]
    return stats.ClusterTotals(len(per_contact), y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (y * x).sum())


def _per_contact(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.assign(expected=rows.groupby("posting")["y"].transform("mean"))
    return rows.groupby(["contact", "segment"], as_index=False).agg(
        y=("y", "sum"), n=("y", "size"), expected=("expected", "sum"))


@pytest.mark.parametrize("successes,trials", [(0, 10), (5, 10), (81, 263), (999, 1000)])
def test_wilson_interval_matches_statsmodels(successes, trials):
    low, high = stats.wilson_interval(successes, trials)
    ref_low, ref_high = proportion_confint(successes, trials, method="wilson")
    assert (float(low), float(high)) == pytest.approx((ref_low, ref_high), abs=1e-12)


def test_wilson_interval_of_empty_segment_is_nan():
    low, high = stats.wilson_interval(0, 0)
    assert np.isnan(low) and np.isnan(high)


def test_clustered_wilson_with_one_send_per_contact_is_plain_wilson():
    y = np.array([1] * 30 + [0] * 170)
    totals = stats.ClusterTotals(200, y.sum(), 200, (y * y).sum(), 200, y.sum())
    assert totals.design_effect() == pytest.approx(1.0)
    assert stats.clustered_wilson_interval(totals) == pytest.approx(
        proportion_confint(30, 200, method="wilson"), abs=1e-12)


def test_clustered_wilson_widens_when_engagement_is_contact_specific():
    per_contact = _per_contact(_rows(ratio=1.0))
    totals = _totals(per_contact, "n")
    low, high = stats.clustered_wilson_interval(totals)
    plain_low, plain_high = proportion_confint(totals.y, totals.x, method="wilson")
    assert totals.design_effect() > 1.5
    assert low < plain_low and high > plain_high
    assert low < totals.ratio < high


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjusted_p_values_match_statsmodels(method):
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.5, 0.9]
    adjusted, significant = stats.adjust_p_values(p, method)
    reject, ref, _, _ = multipletests(p, alpha=0.05, method=method)
    assert adjusted == pytest.approx(ref, abs=1e-12)
    assert list(significant) == list(reject)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjustment_is_statsmodels_to_the_last_bit_with_ties_and_gaps(method):
    rng = np.random.default_rng(11)
    for trial in range(60):
        p = rng.random(int(rng.integers(1, 120))) ** rng.uniform(0.2, 5)
        if trial % 2:
            p = np.round(p, 2)                        # ties
        p[rng.random(len(p)) < 0.1] = np.nan          # untestable comparisons
        for alpha in (0.05, 0.1):
            adjusted, significant = stats.adjust_p_values(p, method, alpha)
            tested = np.isfinite(p)
            if tested.any():
                reject, ref, _, _ = multipletests(p[tested], alpha=alpha, method=method)
                assert np.array_equal(adjusted[tested], ref) and np.array_equal(significant[tested], reject)
            assert np.isnan(adjusted[~tested]).all() and not significant[~tested].any()


def test_untestable_comparisons_do_not_count_as_tests():
    adjusted, significant = stats.adjust_p_values([0.01, np.nan, 0.04], "holm")
    ref = multipletests([0.01, 0.04], method="holm")[1]
    assert np.isnan(adjusted[1]) and not significant[1]
    assert [adjusted[0], adjusted[2]] == pytest.approx(list(ref))


def _glm(rows):
    return smf.glm("y ~ C(posting) + segment", rows, family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": rows["contact"]})


def test_within_posting_ratio_equals_poisson_glm_with_posting_effects():
    rows = _rows()
    by_posting = rows.groupby(["posting", "segment"])["y"].agg(["sum", "count"]).unstack()
    ratio = stats.within_posting_rate_ratio(by_posting[("sum", 1)], by_posting[("count", 1)],
                                            by_posting[("sum", 0)], by_posting[("count", 0)])
    assert ratio == pytest.approx(np.exp(_glm(rows).params["segment"]), rel=1e-8)


def test_clustered_standard_error_matches_glm_cluster_robust():
    rows = _rows()
    per_contact = _per_contact(rows)
    segment = _totals(per_contact[per_contact.segment == 1], "expected")
    rest = _totals(per_contact[per_contact.segment == 0], "expected")
    test = stats.pooled_ratio_test(segment, rest)
    glm = _glm(rows)
    assert test.se_log == pytest.approx(glm.bse["segment"], rel=0.05)
    naive = smf.glm("y ~ C(posting) + segment", rows, family=sm.families.Poisson()).fit()
    assert test.se_log > 1.2 * naive.bse["segment"]      # rows are not independent


def test_mix_effect_is_raw_not_within_posting():
    """A segment over-represented in strong postings with no effect of its own."""
    rows = _rows(ratio=1.0, mix=True)
    per_contact = _per_contact(rows)
    seg, rest = per_contact[per_contact.segment == 1], per_contact[per_contact.segment == 0]
    raw = stats.pooled_ratio_test(_totals(seg, "n"), _totals(rest, "n"))
    within = stats.pooled_ratio_test(_totals(seg, "expected"), _totals(rest, "expected"))
    assert raw.ratio > 1.2 and raw.p_value < 0.01
    assert within.ci[0] < 1.0 < within.ci[1]


def test_ratio_test_interval_and_p_value():
    test = stats.ratio_test(np.log(2.0), 0.25)
    assert test.ratio == pytest.approx(2.0)
    assert test.ci == pytest.approx((2.0 * np.exp(-stats.Z95 * 0.25), 2.0 * np.exp(stats.Z95 * 0.25)))
    assert test.p_value == pytest.approx(2 * (1 - __import__("scipy").stats.norm.cdf(np.log(2.0) / 0.25)))
