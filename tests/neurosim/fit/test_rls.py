"""The RLS/FORCE core: block update, CURBD's per-step loop, ridge solution, inputs and drives."""

import numpy as np
import pytest
import torch

from neurosim.fit._rls import (
    RecursiveLeastSquares,
    activation_pair,
    bump_basis,
    filtered_noise,
    force_epoch,
)

F64 = torch.float64


def curbd_numpy(a, j0, *, alpha, inputs=None, drive=None, bias=False, p0=1.0, target="rates"):
    """The published per-step loop (CURBD's trainMultiRegionRNN, 'rates'), one trial, numpy.

    ``a [T, N]``; ``j0 [N, N + I + bias]``; returns the final ``J`` and ``P`` and the rates.
    """
    j, p = j0.copy(), p0 * np.eye(j0.shape[1])
    h = np.arctanh(np.clip(a[0], -0.999, 0.999))
    rates = [np.tanh(h)]
    for t in range(1, a.shape[0]):
        parts = [np.tanh(h)]
        if inputs is not None:
            parts.append(inputs[t])
        if bias:
            parts.append(np.ones(1))
        r = np.concatenate(parts)
        jr = j.dot(r) + (0.0 if drive is None else drive[t])
        h = h + alpha * (-h + jr)
        if target == "rates":
            err = (np.tanh(h) - a[t]) / alpha
        else:
            err = (h - np.arctanh(np.clip(a[t], -0.999, 0.999))) / alpha
        k = p.dot(r)
        c = 1.0 / (1.0 + r.dot(k))
        p = p - c * np.outer(k, k)
        j = j - c * np.outer(err, k)
        rates.append(np.tanh(h))
    return j, p, np.array(rates)


def _trajectory(n=12, t=80, seed=0):
    rng = np.random.default_rng(seed)
    return 0.9 * np.tanh(np.cumsum(rng.normal(0, 0.3, (t, n)), axis=0))


class TestRecursiveLeastSquares:
    def test_block_update_equals_sequential_updates(self):
        rng = np.random.default_rng(1)
        d, n_out, b = 7, 3, 5
        w_block = torch.as_tensor(rng.normal(size=(n_out, d)))
        w_seq = w_block.clone()
        block, seq = RecursiveLeastSquares(w_block, p0=0.5), RecursiveLeastSquares(w_seq, p0=0.5)
        for _ in range(4):
            x = torch.as_tensor(rng.normal(size=(b, d)))
            y = torch.as_tensor(rng.normal(size=(b, n_out)))
            block.update_linear(x, y)
            for row in range(b):  # errors recomputed with the updated weights each time
                seq.update_linear(x[row], y[row])
        np.testing.assert_allclose(w_block.numpy(), w_seq.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(block.p.numpy(), seq.p.numpy(), rtol=0, atol=1e-12)

    @pytest.mark.parametrize("block_size", [1, 4, 30])
    def test_reaches_the_ridge_solution(self, block_size):
        # RLS from W = 0, P = p0 I is ridge regression with penalty 1/p0, exactly
        rng = np.random.default_rng(2)
        x, y, p0 = rng.normal(size=(60, 6)), rng.normal(size=(60, 2)), 3.0
        w = torch.zeros(2, 6, dtype=F64)
        rls = RecursiveLeastSquares(w, p0=p0)
        for s in range(0, 60, block_size):
            rls.update_linear(
                torch.as_tensor(x[s : s + block_size]), torch.as_tensor(y[s : s + block_size])
            )
        gram = x.T @ x + np.eye(6) / p0
        np.testing.assert_allclose(w.numpy(), np.linalg.solve(gram, x.T @ y).T, atol=1e-10)
        np.testing.assert_allclose(rls.p.numpy(), np.linalg.inv(gram), atol=1e-10)

    def test_updates_in_place(self):
        w = torch.zeros(2, 3, dtype=F64)
        rls = RecursiveLeastSquares(w)
        rls.update_linear(torch.ones(3, dtype=F64), torch.ones(2, dtype=F64))
        assert rls.weights is w and w.abs().sum() > 0

    def test_bad_arguments_name_the_field(self):
        with pytest.raises(ValueError, match="p0"):
            RecursiveLeastSquares(torch.zeros(2, 3), p0=0.0)
        with pytest.raises(ValueError, match="weights"):
            RecursiveLeastSquares(torch.zeros(3))
        with pytest.raises(ValueError, match="regressors"):
            RecursiveLeastSquares(torch.zeros(2, 3)).update(torch.zeros(1, 4), torch.zeros(1, 2))


class TestForceEpoch:
    @pytest.mark.parametrize("target", ["rates", "currents"])
    @pytest.mark.parametrize("alpha", [1.0, 0.25])
    def test_one_trial_equals_the_numpy_curbd_loop(self, target, alpha):
        a = _trajectory()
        n = a.shape[1]
        rng = np.random.default_rng(3)
        x, u = rng.normal(size=(a.shape[0], 2)), 0.1 * rng.normal(size=a.shape)
        j0 = np.concatenate([1.5 * rng.normal(size=(n, n)) / np.sqrt(n), np.zeros((n, 3))], 1)
        j_ref, p_ref, rates_ref = curbd_numpy(
            a, j0, alpha=alpha, inputs=x, drive=u, bias=True, target=target
        )
        w = torch.as_tensor(j0.copy())
        rls = RecursiveLeastSquares(w)
        out = force_epoch(
            rls,
            torch.as_tensor(a)[None],
            alpha=alpha,
            target=target,
            inputs=torch.as_tensor(x)[None],
            drive=torch.as_tensor(u)[None],
        )
        np.testing.assert_allclose(w.numpy(), j_ref, rtol=0, atol=1e-11)
        np.testing.assert_allclose(rls.p.numpy(), p_ref, rtol=0, atol=1e-11)
        np.testing.assert_allclose(out.rates[0].numpy(), rates_ref, rtol=0, atol=1e-11)

    def test_learning_reproduces_a_teachers_trajectory_in_a_free_run(self):
        rng = np.random.default_rng(4)
        j_teacher, h = 1.3 * rng.normal(size=(10, 10)) / np.sqrt(10), rng.normal(size=10)
        traj = [np.tanh(h)]
        for _ in range(59):
            h = h + 0.5 * (-h + j_teacher @ np.tanh(h))
            traj.append(np.tanh(h))
        a = torch.as_tensor(np.array(traj))[None]
        g = torch.Generator().manual_seed(0)
        w = torch.cat(
            [
                1.5 * torch.randn(10, 10, generator=g, dtype=F64) / 10**0.5,
                torch.zeros(10, 1, dtype=F64),
            ],
            1,
        )
        rls = RecursiveLeastSquares(w)
        first = force_epoch(None, a, alpha=0.5, weights=w)
        for _ in range(15):
            force_epoch(rls, a, alpha=0.5)
        free = force_epoch(None, a, alpha=0.5, weights=w)
        err_before = float((first.rates - a).square().mean())
        err_after = float((free.rates - a).square().mean())
        assert err_after < 0.02 * err_before

    def test_batched_trials_share_weights_and_match_a_single_trial_for_b1(self):
        a = torch.as_tensor(np.stack([_trajectory(seed=s) for s in range(3)]))
        w1 = torch.zeros(12, 13, dtype=F64)
        wb = w1.clone()
        force_epoch(RecursiveLeastSquares(w1), a[:1], alpha=0.5)
        force_epoch(RecursiveLeastSquares(wb), a, alpha=0.5)
        assert not torch.equal(w1, wb)  # the other trials moved the shared weights
        w_again = torch.zeros(12, 13, dtype=F64)
        force_epoch(RecursiveLeastSquares(w_again), a[:1], alpha=0.5)
        assert torch.equal(w1, w_again)  # deterministic

    def test_without_learner_weights_are_untouched(self):
        w = torch.randn(12, 13, dtype=F64)
        before = w.clone()
        force_epoch(None, torch.as_tensor(_trajectory())[None], alpha=0.3, weights=w)
        assert torch.equal(w, before)

    def test_float32_runs(self):
        w = torch.zeros(12, 13)
        out = force_epoch(
            RecursiveLeastSquares(w), torch.as_tensor(_trajectory())[None].float(), alpha=0.5
        )
        assert out.rates.dtype == torch.float32 and np.isfinite(out.loss)

    def test_bad_arguments_name_the_field(self):
        a = torch.as_tensor(_trajectory())[None]
        rls = RecursiveLeastSquares(torch.zeros(12, 13, dtype=F64))
        with pytest.raises(ValueError, match="target"):
            force_epoch(rls, a, alpha=0.5, target="spikes")
        with pytest.raises(ValueError, match="alpha"):
            force_epoch(rls, a, alpha=1.5)
        with pytest.raises(ValueError, match="weights"):
            force_epoch(rls, a, alpha=0.5, bias=False)
        with pytest.raises(ValueError, match="activation"):
            force_epoch(rls, a, alpha=0.5, activation="relu")

    @pytest.mark.gpu
    def test_runs_on_cuda_like_on_cpu(self):
        a = torch.as_tensor(_trajectory())[None]
        w_cpu = torch.zeros(12, 13, dtype=F64)
        w_gpu = w_cpu.cuda()
        force_epoch(RecursiveLeastSquares(w_cpu), a, alpha=0.5)
        force_epoch(RecursiveLeastSquares(w_gpu), a.cuda(), alpha=0.5)
        np.testing.assert_allclose(w_gpu.cpu().numpy(), w_cpu.numpy(), atol=1e-9)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "identity"])
def test_activation_inverse_round_trips(name):
    phi, inv = activation_pair(name)
    h = torch.linspace(-3, 3, 13, dtype=F64)
    np.testing.assert_allclose(inv(phi(h)).numpy(), h.numpy(), atol=1e-9)


def test_inverse_clips_data_outside_the_range():
    _, inv = activation_pair("tanh")
    assert float(inv(torch.tensor(1.5, dtype=F64))) == pytest.approx(np.arctanh(0.999))


def test_filtered_noise_is_unit_sd_with_the_filter_autocorrelation():
    x = filtered_noise(20_000, 2, dt=10.0, tau=50.0, generator=torch.Generator().manual_seed(0))
    x = x[200:].numpy()
    lag1 = np.mean([np.corrcoef(x[:-1, i], x[1:, i])[0, 1] for i in range(2)])
    assert x.std() == pytest.approx(1.0, abs=0.1)
    assert lag1 == pytest.approx(np.exp(-10.0 / 50.0), abs=0.02)


def test_bump_basis_peaks_tile_the_trial():
    basis = bump_basis(50, 6).numpy()
    assert basis.argmax(axis=0).tolist() == [0, 10, 20, 29, 39, 49]
    with pytest.raises(ValueError, match="n_basis"):
        bump_basis(5, 6)
