"""compute_dynamics_comparison: identical models agree, models with different dynamics do not."""

import copy

import numpy as np
import pytest
import torch

import analyses
from neurosim.models import RateRNN


def _net(gain: float) -> RateRNN:
    torch.manual_seed(3)
    net = RateRNN(1, 12, 1, activation="tanh", tau=100.0, dt=20.0, w_rec_init="normal", gain=gain)
    return net


@pytest.fixture(scope="module")
def h0():
    return np.random.default_rng(0).normal(0.0, 1.5, size=(24, 12))


def test_a_model_agrees_with_its_copy(h0):
    net = _net(0.8)
    cmp = analyses.compute_dynamics_comparison(
        {"teacher": net, "copy": copy.deepcopy(net)}, h0, n_steps=200, warmup=50, device="cpu"
    )
    assert cmp.n_fixed_points.values.tolist() == [1, 1]  # gain < 1: one stable point at 0
    assert cmp.n_stable.values.tolist() == [1, 1]
    np.testing.assert_allclose(cmp.lyapunov_mean.values[0], cmp.lyapunov_mean.values[1])
    assert analyses.lyapunov_agreement(cmp, "teacher", "copy").all()
    # the contracting map: λ₁ = log|eig of (1−α)I + α W φ'(0)|/dt at the origin
    w = net.w_rec.detach().double().numpy()
    jac = (1 - net.alpha) * np.eye(12) + net.alpha * w
    top = np.log(np.max(np.abs(np.linalg.eigvals(jac)))) / net.dt
    assert cmp.lyapunov_mean.values[0, 0] == pytest.approx(top, abs=2e-3)


def test_a_multistable_model_differs_from_a_contracting_one(h0):
    weak, strong = _net(0.5), _net(3.0)
    cmp = analyses.compute_dynamics_comparison(
        {"weak": weak, "strong": strong}, h0, n_steps=200, warmup=50, device="cpu"
    )
    assert cmp.n_fixed_points.sel(model="weak") == 1
    assert cmp.n_fixed_points.sel(model="strong") != 1 or cmp.n_stable.sel(model="strong") == 0
    assert not analyses.lyapunov_agreement(cmp, "weak", "strong").all()


def test_bad_initial_states_are_named(h0):
    with pytest.raises(ValueError, match="initial_states must be"):
        analyses.compute_dynamics_comparison({"a": _net(0.5)}, h0[:, :5])
