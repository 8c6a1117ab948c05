"""Goodness-of-fit metrics against analytic values and limit cases."""

import math

import numpy as np
import pytest
from scipy import stats

from neurosim.fit._metrics import (
    bits_per_spike,
    decoding_r2,
    poisson_nll,
    psth_r2,
    pvar,
    r2_per_unit,
    smoothed_psth_baseline,
)


class TestPVar:
    def test_additive_noise_explains_its_share(self):
        rng = np.random.default_rng(0)
        a = rng.normal(0.0, 2.0, size=(40, 100, 20))
        pred = a + rng.normal(0.0, 1.0, size=a.shape)
        assert pvar(a, pred) == pytest.approx(1 - 1 / 4, abs=0.01)

    def test_uses_the_variance_of_all_entries(self):
        a = np.stack([np.zeros(10), np.arange(10.0)], axis=-1)
        pred = a.copy()
        pred[:, 1] = 0.0  # miss the second unit entirely
        assert pvar(a, pred) == pytest.approx(1 - np.sum(a[:, 1] ** 2) / (a.size * a.var()))

    def test_rejects_shape_mismatch_and_constant_data(self):
        with pytest.raises(ValueError, match="same shape"):
            pvar(np.zeros((2, 3)), np.zeros((3, 2)))
        with pytest.raises(ValueError, match="zero variance"):
            pvar(np.ones((2, 3)), np.ones((2, 3)))


class TestR2:
    def test_per_unit_against_formula_and_constant_unit_is_nan(self):
        rng = np.random.default_rng(1)
        a = rng.normal(size=(30, 3))
        a[:, 2] = 5.0
        p = a + rng.normal(size=a.shape) * [0.1, 1.0, 0.0]
        r2 = r2_per_unit(a, p)
        want = 1 - np.sum((a[:, 1] - p[:, 1]) ** 2) / np.sum((a[:, 1] - a[:, 1].mean()) ** 2)
        assert r2[1] == pytest.approx(want)
        assert r2[0] > 0.95 and math.isnan(r2[2])


class TestPoisson:
    def test_nll_equals_scipy_logpmf(self):
        rng = np.random.default_rng(2)
        lam = rng.uniform(0.1, 5.0, size=(7, 9, 4))
        k = rng.poisson(lam)
        assert poisson_nll(lam, k) == pytest.approx(-stats.poisson.logpmf(k, lam).sum())

    def test_bits_per_spike_null_is_zero_and_truth_matches_expectation(self):
        rng = np.random.default_rng(3)
        t = np.arange(50)
        lam = 0.5 + 0.4 * np.sin(2 * np.pi * t / 25)[None, :, None] * np.array([1.0, -1.0, 0.5])
        lam = np.broadcast_to(lam, (4000, 50, 3))
        k = rng.poisson(lam)
        null = np.broadcast_to(k.reshape(-1, 3).mean(axis=0), k.shape)
        assert bits_per_spike(null, k) == pytest.approx(0.0, abs=1e-12)
        mean = lam.reshape(-1, 3).mean(axis=0)
        gain = np.sum(lam * np.log(lam / mean) - lam + mean)  # E[ll_model − ll_null]
        expected = gain / (lam.sum() * math.log(2))
        assert bits_per_spike(lam, k) == pytest.approx(expected, rel=0.03)
        assert bits_per_spike(lam[:, ::-1], k) < 0  # a wrong time course is worse than the mean

    def test_bad_rates_and_counts_are_rejected(self):
        with pytest.raises(ValueError, match="rates must be finite"):
            bits_per_spike(np.array([-1.0]), np.array([1]))
        with pytest.raises(ValueError, match="whole numbers"):
            poisson_nll(np.array([1.0]), np.array([0.5]))
        with pytest.raises(ValueError, match="no spikes"):
            bits_per_spike(np.ones(3), np.zeros(3))


class TestPSTH:
    def test_condition_means_give_r2_one_and_shuffled_conditions_less(self):
        rng = np.random.default_rng(4)
        cond = np.repeat([0, 1, 2], 10)
        psth = rng.normal(size=(3, 20, 5))
        data = psth[cond] + rng.normal(scale=0.5, size=(30, 20, 5))
        means = np.stack([data[cond == c].mean(axis=0) for c in range(3)])
        assert psth_r2(means[cond], data, cond) == pytest.approx(1.0)
        assert psth_r2(means[cond[::-1]], data, cond) < 0.5

    def test_baseline_limits(self):
        rng = np.random.default_rng(5)
        k = rng.poisson(2.0, size=(6, 30, 2)).astype(float)
        cond = np.array([0, 0, 0, 1, 1, 1])
        raw = smoothed_psth_baseline(k, cond, [1, 7], dt=10.0, sigma_ms=0.0)
        np.testing.assert_allclose(raw[0], k[3:].mean(axis=0))
        np.testing.assert_allclose(raw[1], k.mean(axis=0))  # unseen condition → overall PSTH
        smooth = smoothed_psth_baseline(k, cond, [0], dt=10.0, sigma_ms=50.0)
        assert smooth.sum() == pytest.approx(k[:3].mean(axis=0).sum(), rel=1e-9)  # mass kept
        assert smooth.std(axis=1).mean() < raw.std(axis=1).mean()


class TestDecoding:
    def test_linear_target_is_decoded_and_noise_is_not(self):
        rng = np.random.default_rng(6)
        x = rng.normal(size=(40, 25, 4))
        y = x @ np.array([0.5, -1.0, 2.0, 0.0]) + 3.0
        assert decoding_r2(x, y, train=range(30), test=range(30, 40), alpha=1e-8) == pytest.approx(
            1.0
        )
        noise = rng.normal(size=(40, 25))
        assert decoding_r2(x, noise, train=range(30), test=range(30, 40)) < 0.05
