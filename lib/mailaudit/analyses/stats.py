"""Statistics shared by the analyses: intervals on rates, tests, multiple-comparison adjustment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

Z95 = 1.959963984540054


def wilson_interval(successes, trials, alpha: float = 0.05):
    """Wilson score interval for successes/trials (fractions). Arrays broadcast; trials == 0 gives NaN."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    safe_trials = np.where(trials > 0, trials, 1.0)
    low, high = proportion_confint(successes, safe_trials, alpha=alpha, method="wilson")
    empty = trials <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


# --- clustered rate ratios (segment comparisons) -------------------------------------------------
#
# A contact receives many postings and engagement is contact-specific, so recipient rows are not
# independent: every variance below treats the contact as the independent unit (cluster).


@dataclass(frozen=True)
class ClusterTotals:
    """Sums over contacts (clusters) of a per-contact count `y` and its reference `x`.

    `x` is the denominator (delivered sends, for a plain rate) or the expected count under a
    reference model (for a standardised ratio). The squares and cross-product give the
    cluster-robust (sandwich) variance of ``sum(y) / sum(x)`` without recipient-level rows.
    """

    clusters: float
    y: float
    x: float
    yy: float
    xx: float
    xy: float

    def __sub__(self, other: "ClusterTotals") -> "ClusterTotals":
        return ClusterTotals(*(getattr(self, f) - getattr(other, f) for f in self.__dataclass_fields__))

    @property
    def ratio(self) -> float:
        return self.y / self.x if self.x > 0 else float("nan")

    def log_ratio_variance(self) -> float:
        """Sandwich variance of log(sum y / sum x) with clusters as units, G/(G-1) corrected.

        Var(theta) = sum_i (y_i - theta x_i)^2 / (sum x)^2, by the delta method divided by theta^2.
        """
        if self.y <= 0 or self.x <= 0 or self.clusters < 2:
            return float("nan")
        theta = self.y / self.x
        residual = self.yy - 2 * theta * self.xy + theta * theta * self.xx
        return max(residual, 0.0) / (self.y * self.y) * self.clusters / (self.clusters - 1)

    def design_effect(self) -> float:
        """Variance of the pooled rate y/x with contacts as clusters ÷ its binomial variance (>= 1).

        Only meaningful when `x` counts trials (e.g. delivered sends) and `y` successes.
        """
        if self.x <= 0 or self.clusters < 2:
            return float("nan")
        p = self.y / self.x
        binomial = p * (1 - p) / self.x
        if binomial <= 0:
            return 1.0
        # no G/(G-1) factor here: with one send per contact this is exactly 1
        clustered = max(self.yy - 2 * p * self.xy + p * p * self.xx, 0.0) / (self.x * self.x)
        return max(clustered / binomial, 1.0)


def clustered_wilson_interval(totals: ClusterTotals, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson interval on the pooled rate y/x (fraction), on the effective sample size x / design effect.

    With one send per contact the design effect is 1 and this is the plain Wilson interval.
    """
    if totals.x <= 0:
        return float("nan"), float("nan")
    deff = totals.design_effect()
    deff = 1.0 if not np.isfinite(deff) else deff
    n_eff = totals.x / deff
    low, high = wilson_interval(totals.ratio * n_eff, n_eff, alpha=alpha)
    return float(low), float(high)


@dataclass(frozen=True)
class RatioTest:
    """Rate ratio segment ÷ comparison with its 95% interval and a two-sided p-value."""

    ratio: float
    ci: tuple[float, float]
    p_value: float
    se_log: float


def ratio_test(log_ratio: float, se_log: float, alpha: float = 0.05) -> RatioTest:
    """Wald test of log ratio = 0 and the interval exp(log ratio ± z·se)."""
    if not (np.isfinite(log_ratio) and np.isfinite(se_log) and se_log > 0):
        ratio = float(np.exp(log_ratio)) if np.isfinite(log_ratio) else float("nan")
        return RatioTest(ratio, (float("nan"), float("nan")), float("nan"), float("nan"))
    z = norm.ppf(1 - alpha / 2)
    p = 2 * norm.sf(abs(log_ratio) / se_log)
    return RatioTest(float(np.exp(log_ratio)), (float(np.exp(log_ratio - z * se_log)),
                                               float(np.exp(log_ratio + z * se_log))), float(p), float(se_log))


def pooled_ratio_test(segment: ClusterTotals, rest: ClusterTotals, alpha: float = 0.05) -> RatioTest:
    """Ratio of the two groups' y/x ratios; the groups hold different contacts, so variances add.

    With x = delivered this is the raw (mailing-mix-blind) rate ratio; with x = expected events
    under the posting-only model it is the ratio of standardised ratios (indirect standardisation
    by posting).
    """
    log_ratio = np.log(segment.ratio / rest.ratio) if segment.y > 0 and rest.y > 0 else float("nan")
    se = np.sqrt(segment.log_ratio_variance() + rest.log_ratio_variance())
    return ratio_test(log_ratio, se, alpha)


def within_posting_rate_ratio(events_segment, trials_segment, events_rest, trials_rest) -> float:
    """Maximum-likelihood rate ratio segment ÷ rest in a Poisson model with one effect per posting.

    Inputs are per-posting arrays (events and trials of the segment and of the rest). This is the
    point estimate of ``GLM(y ~ C(posting) + segment, Poisson)`` on recipient rows, computed from
    its sufficient statistics: with lambda_j = (O_jS + O_jR) / (r n_jS + n_jR) the score equation
    is sum_j r n_jS lambda_j = O_S. Postings where one side has no trials carry no information.
    """
    o_s, n_s = np.asarray(events_segment, float), np.asarray(trials_segment, float)
    o_r, n_r = np.asarray(events_rest, float), np.asarray(trials_rest, float)
    keep = (n_s > 0) & (n_r > 0)
    o_s, n_s, o_r, n_r = o_s[keep], n_s[keep], o_r[keep], n_r[keep]
    observed = o_s.sum()
    if observed <= 0 or o_r.sum() <= 0:
        return float("nan")
    total = o_s + o_r

    def score(log_r: float) -> float:
        r = np.exp(log_r)
        return float(np.sum(r * n_s * total / (r * n_s + n_r)) - observed)

    low, high = -1.0, 1.0
    while score(low) > 0:
        low *= 2
    while score(high) < 0:
        high *= 2
    return float(np.exp(optimize.brentq(score, low, high, xtol=1e-12)))


def adjust_p_values(p_values, method: str = "holm", alpha: float = 0.05):
    """Multiple-comparison adjustment across a whole table, as statsmodels' ``multipletests`` does it
    (same arithmetic; written out because statsmodels' Holm runs a full garbage collection each call).

    `method` is ``"holm"`` (family-wise error) or ``"fdr_bh"`` (Benjamini–Hochberg false discovery
    rate). NaN p-values (untestable comparisons) stay NaN and do not count as tests.
    Returns (adjusted p-values, significant flags).
    """
    if method not in _ADJUSTMENTS:
        raise ValueError(f"unknown correction {method!r}; corrections: {', '.join(_ADJUSTMENTS)}")
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    significant = np.zeros(p.shape, dtype=bool)
    tested = np.flatnonzero(np.isfinite(p))
    if tested.size:
        order = tested[np.argsort(p[tested])]
        reject, corrected = _ADJUSTMENTS[method](p[order], alpha)
        adjusted[order] = np.minimum(corrected, 1.0)
        significant[order] = reject
    return adjusted, significant


def _holm(sorted_p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down: reject while p_(i) <= alpha / (n - i + 1)."""
    n = len(sorted_p)
    not_reject = sorted_p > alpha / np.arange(n, 0, -1)
    first = np.flatnonzero(not_reject)
    not_reject[(first[0] if first.size else n):] = True
    return ~not_reject, np.maximum.accumulate(sorted_p * np.arange(n, 0, -1))


def _benjamini_hochberg(sorted_p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up: reject up to the largest i with p_(i) <= alpha i / n."""
    ecdf = np.arange(1, len(sorted_p) + 1) / float(len(sorted_p))
    reject = sorted_p <= ecdf * alpha
    if reject.any():
        reject[:np.flatnonzero(reject).max()] = True
    return reject, np.minimum.accumulate((sorted_p / ecdf)[::-1])[::-1]


_ADJUSTMENTS = {"holm": _holm, "fdr_bh": _benjamini_hochberg}
