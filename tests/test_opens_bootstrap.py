"""The contact bootstrap draws like contacts together; its replicate sums have the moments of one
Poisson(1) draw per contact (and Poisson(rate × draw) into the predicted cell)."""

from __future__ import annotations

import numpy as np

from mailaudit.analyses.opens import contact_bootstrap_sums


def test_replicate_sums_have_the_moments_of_one_draw_per_contact():
    rng = np.random.default_rng(3)
    contacts, n_boot, rate = 600, 20_000, 0.4
    features = rng.integers(0, 4, (contacts, 3))
    features[:200] = [5, 1, 0]                     # many contacts alike: drawn together
    cell = rng.integers(0, 2, contacts)
    predicted = np.where(cell == 1, 2, -1)          # cell 1's contacts are also drawn into cell 2
    boot = contact_bootstrap_sums(features, cell, 3, n_boot, seed=1, predicted_cell=predicted, predicted_rate=rate)
    assert boot.shape == (n_boot, 3, 3)
    for code in (0, 1):
        f = features[cell == code]
        # w ~ Poisson(1) per contact: mean Σf, variance Σf²
        np.testing.assert_allclose(boot[:, code].mean(axis=0), f.sum(axis=0), rtol=0.01)
        np.testing.assert_allclose(boot[:, code].var(axis=0), (f ** 2).sum(axis=0), rtol=0.05)
    f = features[cell == 1]
    # Poisson(rate × w): mean rate·Σf, variance (rate + rate²)·Σf²
    np.testing.assert_allclose(boot[:, 2].mean(axis=0), rate * f.sum(axis=0), rtol=0.02)
    np.testing.assert_allclose(boot[:, 2].var(axis=0), (rate + rate ** 2) * (f ** 2).sum(axis=0), rtol=0.05)
    # the predicted draw goes with its contacts' own draw
    assert np.corrcoef(boot[:, 1, 0], boot[:, 2, 0])[0, 1] > 0.3


def test_same_seed_same_replicates_and_no_contact_no_sum():
    features = np.array([[1, 0], [1, 1], [2, 1]])
    cell = np.array([0, 0, 2])
    a = contact_bootstrap_sums(features, cell, 4, 50, seed=7)
    assert np.array_equal(a, contact_bootstrap_sums(features, cell, 4, 50, seed=7))
    assert not a[:, [1, 3]].any()
    assert (a[:, 2] == a[:, 2, :1] * [1, 0.5]).all()    # one contact: its features times its draw
