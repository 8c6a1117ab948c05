"""Bandit behaviour metrics against hand-computed values and limit cases."""

import numpy as np
import pytest
import xarray as xr

import analyses
from analyses._bandit_behaviour import METRICS


def _dataset(choice, reward, mean, p_choice=None):
    choice = np.asarray(choice, np.int64)
    reward = np.asarray(reward, float)
    mean = np.asarray(mean, float)
    S, T, A = mean.shape
    chosen = np.take_along_axis(mean, choice[..., None], -1)[..., 0]
    data = {
        "choice": (("session", "trial"), choice),
        "reward": (("session", "trial"), reward),
        "expected_reward": (("session", "trial", "arm"), mean),
        "regret": (("session", "trial"), mean.max(-1) - chosen),
    }
    if p_choice is not None:
        data["p_choice"] = (("session", "trial", "arm"), np.asarray(p_choice, float))
    return xr.Dataset(data, coords={"session": range(S), "trial": range(T), "arm": range(A)})


def test_metrics_equal_hand_computation():
    # one session, 4 trials, arms with means 0.2 / 0.8: choices 0, 1, 1, 0
    mean = np.tile([0.2, 0.8], (1, 4, 1))
    ds = _dataset([[0, 1, 1, 0]], [[0.0, 1.0, 1.0, 1.0]], mean)
    m = analyses.compute_bandit_metrics(ds).isel(session=0)
    assert m["total_regret"] == pytest.approx(2 * 0.6)
    assert m["p_best"] == 0.5
    assert m["switch_rate"] == pytest.approx(2 / 3)
    assert m["choice_entropy"] == pytest.approx(1.0)  # 2 of 4 each: one bit
    assert m["reward_mean"] == 0.75
    sd = np.std([0, 1, 1, 1], ddof=1)
    assert m["reward_sd"] == pytest.approx(sd)
    assert m["sharpe"] == pytest.approx(0.75 / sd)
    assert np.isnan(m["policy_entropy"])  # not recorded


def test_limit_cases_constant_choice_and_uniform_policy():
    A, T = 4, 10
    mean = np.tile(np.arange(A, dtype=float), (2, T, 1))
    uniform = np.full((2, T, A), 1 / A)
    ds = _dataset(np.full((2, T), A - 1), np.ones((2, T)), mean, uniform)
    m = analyses.compute_bandit_metrics(ds)
    np.testing.assert_array_equal(m["total_regret"], 0.0)
    np.testing.assert_array_equal(m["p_best"], 1.0)
    np.testing.assert_array_equal(m["switch_rate"], 0.0)
    np.testing.assert_array_equal(m["choice_entropy"], 0.0)
    np.testing.assert_allclose(m["policy_entropy"], np.log2(A))
    assert np.isnan(m["sharpe"]).all()  # rewards never vary


def test_ties_count_as_best_and_curves_accumulate():
    mean = np.array([[[0.5, 0.5], [0.1, 0.9], [0.1, 0.9]]])
    ds = _dataset([[1, 0, 1]], [[1, 0, 1]], mean)
    assert float(analyses.compute_bandit_metrics(ds)["p_best"][0]) == pytest.approx(2 / 3)
    c = analyses.compute_bandit_curves(ds)
    np.testing.assert_allclose(c["cumulative_regret"], [0.0, 0.8, 0.8])
    np.testing.assert_allclose(c["p_best"], [1.0, 0.0, 1.0])


def test_compare_agents_table_and_errors():
    mean = np.tile([0.0, 1.0], (3, 5, 1))
    good = _dataset(np.ones((3, 5)), np.ones((3, 5)), mean)
    bad = _dataset(np.zeros((3, 5)), np.zeros((3, 5)), mean)
    table = analyses.compare_agents({"good": good, "bad": bad}, metrics=("total_regret", "p_best"))
    assert table.loc["good", "total_regret"].startswith("0.000")
    assert table.loc["bad", "total_regret"].startswith("5.000")
    with pytest.raises(ValueError, match="unknown metric"):
        analyses.compare_agents({"good": good}, metrics=("regret!",))
    with pytest.raises(ValueError, match="missing variable"):
        analyses.compute_bandit_metrics(good.drop_vars("regret"))
    assert set(analyses.summarise_bandit_metrics(analyses.compute_bandit_metrics(good))) == set(
        METRICS
    )
