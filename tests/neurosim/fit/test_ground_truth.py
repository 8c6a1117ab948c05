"""End to end against a known teacher: recovered weights, fixed points and Lyapunov exponents.

The teacher is a tanh RateRNN with three fixed points (saddles) in its autonomous dynamics,
driven during the "recording" by rich random inputs so that its whole state space is visited;
every unit is recorded (rates + small noise). A data-constrained fit by RLS must then recover
the dynamics, not only the traces.
"""

import numpy as np
import pytest
import torch

import analyses
import neurosim
from neurosim import make_recording

N, B, T = 16, 200, 60


@pytest.fixture(scope="module")
def teacher_and_fit():
    torch.manual_seed(0)
    teacher = neurosim.models.RateRNN(N, N, 1, activation="tanh", tau=100.0, dt=20.0,
                                      sigma_rec=0.0, w_rec_init="normal", gain=2.0)  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (B, T, N)).astype(np.float32)
    with torch.no_grad():
        h0 = torch.as_tensor(rng.normal(0.0, 1.0, (B, N)), dtype=torch.float32)
        _, h = teacher(torch.as_tensor(x), h0)
    rates = torch.tanh(h).numpy()
    noisy = rates + rng.normal(0.0, 0.01, rates.shape).astype(np.float32)
    rec = make_recording(noisy, dt=20.0, kind="rates", inputs=x)
    res = neurosim.fit.fit(rec, "constrained", method="rls", target="currents", tau=100.0,
                           n_epochs=30, scale=1.0, quiet=True)  # fmt: skip
    return teacher, res, rec


def test_traces_and_weights_are_recovered(teacher_and_fit):
    teacher, res, _ = teacher_and_fit
    assert res.metrics["pvar_val"] >= 0.9
    w, w_fit = teacher.w_rec.detach().numpy(), res.model.w_rec.detach().numpy()
    assert np.corrcoef(w.ravel(), w_fit.ravel())[0, 1] > 0.98


def test_fixed_points_and_lyapunov_exponents_match_the_teacher(teacher_and_fit):
    teacher, res, _ = teacher_and_fit
    h0 = np.random.default_rng(1).normal(0.0, 1.5, (32, N))
    cmp = analyses.compute_dynamics_comparison(
        {"teacher": teacher, "fit": res.model}, h0, n_steps=1000, warmup=200, device="cpu"
    )
    assert cmp.n_fixed_points.sel(model="teacher") == 3  # the teacher is what we think it is
    assert cmp.n_fixed_points.sel(model="fit") == cmp.n_fixed_points.sel(model="teacher")
    assert cmp.n_stable.sel(model="fit") == cmp.n_stable.sel(model="teacher") == 0
    assert analyses.lyapunov_agreement(cmp, "teacher", "fit")[0]  # λ₁ within 2 SEM
    mean = cmp.lyapunov_mean
    np.testing.assert_allclose(mean.sel(model="fit")[1:], mean.sel(model="teacher")[1:], rtol=0.2)


def test_a_shuffled_recording_explains_nothing(teacher_and_fit):
    _, _, rec = teacher_and_fit
    control = neurosim.fit.shuffled_recording(rec, seed=0)
    res = neurosim.fit.fit(control, "constrained", method="rls", target="currents", tau=100.0,
                           n_epochs=10, scale=1.0, quiet=True)  # fmt: skip
    assert res.metrics["pvar_val"] < 0.1
