"""Robustness curves: strength 0 is the unperturbed run, full lesions reach chance, seeding."""

import numpy as np
import pytest

import analyses
import neurosim
from analyses.plots import plot_robustness
from neurosim import Perturbation as P
from neurosim._train import seeded_rng


@pytest.fixture(scope="module")
def setup(trained_pdm):
    return trained_pdm


SPECS = [P("state", "lesion", label="lesion"), P("inputs", "noise", label="input noise")]


@pytest.fixture(scope="module")
def rob(setup):
    net, task = setup
    return analyses.compute_robustness(net, task, SPECS, [0.0, 0.5, 1.0], seeds=[0, 1], n_trials=64)


class TestComputeRobustness:
    def test_dims_and_coords(self, rob):
        assert rob["performance"].dims == ("seed", "perturbation", "strength")
        assert list(rob["perturbation"].values) == ["lesion", "input noise"]
        assert list(rob["operation"].values) == ["lesion", "noise"]
        assert rob.attrs["metric"] == "accuracy"

    def test_strength_zero_is_the_unperturbed_run(self, rob, setup):
        net, task = setup
        zero = rob["performance"].sel(strength=0.0)
        for seed in (0, 1):
            np.testing.assert_array_equal(zero.sel(seed=seed), rob["unperturbed"].sel(seed=seed))
            ds = neurosim.simulate(net, task, 64, seed=seed)
            batch = task.batch(64, seeded_rng(seed, 10))
            assert task.performance(ds["output"].values, batch).mean() == float(
                rob["unperturbed"].sel(seed=seed)
            )

    def test_full_lesion_is_at_most_chance_and_intact_is_above(self, rob):
        assert (rob["unperturbed"] > 0.75).all()
        assert (rob["performance"].sel(perturbation="lesion", strength=1.0) <= 0.5 + 0.19).all()

    def test_mean_and_sem_over_seeds(self, rob):
        perf = rob["performance"].values
        np.testing.assert_allclose(rob["mean"].values, perf.mean(0))
        np.testing.assert_allclose(rob["sem"].values, perf.std(0, ddof=1) / np.sqrt(2))

    def test_same_seeds_same_numbers(self, rob, setup):
        net, task = setup
        again = analyses.compute_robustness(
            net, task, SPECS, [0.0, 0.5, 1.0], seeds=[0, 1], n_trials=64
        )
        np.testing.assert_array_equal(again["performance"].values, rob["performance"].values)

    def test_one_seed_has_nan_sem(self, setup):
        net, task = setup
        one = analyses.compute_robustness(net, task, SPECS[:1], [0.5], n_trials=8)
        assert np.isnan(one["sem"]).all()

    def test_names_must_be_distinct(self, setup):
        net, task = setup
        with pytest.raises(ValueError, match="distinct"):
            analyses.compute_robustness(net, task, [SPECS[0], SPECS[0]], [0.5], n_trials=8)

    def test_bad_strength_for_a_fraction_names_the_field(self, setup):
        net, task = setup
        with pytest.raises(ValueError, match="strength must be a fraction"):
            analyses.compute_robustness(net, task, SPECS[:1], [2.0], n_trials=8)


def test_plot_draws_one_line_per_perturbation_and_the_baseline(rob, tmp_path):
    fig = plot_robustness(rob)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["lesion", "input noise", "unperturbed"]
    plot_robustness(rob, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
