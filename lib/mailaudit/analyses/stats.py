"""Statistics shared by the analyses: intervals on rates, tests, multiple-comparison adjustment."""

from __future__ import annotations

import numpy as np
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
