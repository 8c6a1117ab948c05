"""Fixed points, slow points and linearisation against maps with analytic answers."""

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy.optimize import brentq

import neurosim
from analyses._dynamics import compute_pca
from analyses._fixed_points import classify_stability, compute_fixed_points, sample_states
from analyses._linearisation import compute_linearisation
from analyses.plots import plot_fixed_points

W = 2.0
X_STAR = brentq(lambda v: np.tanh(W * v) - v, 0.5, 2.0)  # x* = tanh(w x*), ≈ 0.9575


def tanh_step(h, x):
    return torch.tanh(W * h)


@pytest.fixture(scope="module")
def tanh_fps():
    """h ← tanh(2h) in 3-D from an 8×8×8 grid of starting states: 3³ = 27 fixed points."""
    grid = np.linspace(-1.4, 1.4, 8)
    init = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    return compute_fixed_points(tanh_step, init, device="cpu", dt=10.0, quiet=True)


class TestComputeFixedPointsTanh:
    def test_finds_all_27_fixed_points_once(self, tanh_fps):
        assert tanh_fps.sizes["fixed_point"] == 27
        assert set(tanh_fps.kind.values) == {"fixed"}
        assert tanh_fps.attrs["n_initial"] == 512
        assert tanh_fps.attrs["n_duplicates"] == 512 - 27
        assert tanh_fps.attrs["n_nonconverged"] == 0
        s = tanh_fps.state.values
        dist = np.linalg.norm(s[:, None] - s[None], axis=-1) + np.eye(27)
        assert dist.min() > 0.5

    def test_converges_to_float64_precision(self, tanh_fps):
        assert tanh_fps.state.dtype == np.float64
        assert tanh_fps.q.max() < 1e-20
        assert np.all(np.diff(tanh_fps.q.values) >= 0)  # sorted by q

    def test_coordinates_are_zero_or_plus_minus_x_star(self, tanh_fps):
        s = tanh_fps.state.values
        target = np.where(np.abs(s) > 0.5, np.sign(s) * X_STAR, 0.0)
        np.testing.assert_allclose(s, target, atol=1e-8)
        found = {tuple(np.round(row / X_STAR).astype(int)) for row in s}
        assert found == set(itertools.product((-1, 0, 1), repeat=3))

    def test_stability_and_unstable_directions(self, tanh_fps):
        zeros = (np.abs(tanh_fps.state.values) < 0.5).sum(1)
        np.testing.assert_array_equal(tanh_fps.n_unstable.values, zeros)
        stab = tanh_fps.stability.values
        assert (stab == "stable").sum() == 8 and np.all(zeros[stab == "stable"] == 0)
        assert (stab == "unstable").sum() == 1 and np.all(zeros[stab == "unstable"] == 3)
        assert (stab == "saddle").sum() == 18
        assert set(zeros[stab == "saddle"]) == {1, 2}

    def test_eigenvalues_are_analytic_and_sorted(self, tanh_fps):
        s = tanh_fps.state.values
        expected = np.where(np.abs(s) < 0.5, W, W * (1 - X_STAR**2))
        expected = -np.sort(-expected, axis=1)
        lam = tanh_fps.eigenvalues.values
        np.testing.assert_allclose(lam.real, expected, atol=1e-8)
        np.testing.assert_allclose(lam.imag, 0.0, atol=1e-12)
        np.testing.assert_allclose(tanh_fps.eigenvalue_abs.values, expected, atol=1e-8)
        np.testing.assert_allclose(tanh_fps.eigenvalue_real.values, lam.real)
        np.testing.assert_allclose(
            tanh_fps.jacobian.values,
            np.eye(3) * np.where(np.abs(s) < 0.5, W, W * (1 - X_STAR**2))[:, None, :],
            atol=1e-8,
        )

    def test_time_constants(self, tanh_fps):
        lam = tanh_fps.eigenvalue_abs.values
        np.testing.assert_allclose(tanh_fps.time_constant.values, -10.0 / np.log(lam))
        assert tanh_fps.attrs["dt"] == 10.0

    def test_attrs_are_plain(self, tanh_fps):
        for value in tanh_fps.attrs.values():
            assert isinstance(value, str | int | float) and not isinstance(value, bool)


def linear_system(seed=0, n=4):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(n, n))
    lam = np.array([1.5, 0.9, -0.5, 0.2])[:n]
    a = basis @ np.diag(lam) @ np.linalg.inv(basis)
    return a, lam, rng.normal(size=n)


class TestComputeFixedPointsLinear:
    def test_unique_fixed_point_and_eigenvalues(self):
        a, lam, b = linear_system()
        at, bt = torch.tensor(a), torch.tensor(b)
        init = np.random.default_rng(1).normal(size=(40, 4))
        fps = compute_fixed_points(lambda h, x: h @ at.T + bt, init, device="cpu", quiet=True)
        assert fps.sizes["fixed_point"] == 1
        np.testing.assert_allclose(
            fps.state.values[0], np.linalg.solve(np.eye(4) - a, b), atol=1e-10
        )
        np.testing.assert_allclose(fps.eigenvalues.values[0], lam, atol=1e-10)
        np.testing.assert_allclose(fps.jacobian.values[0], a, atol=1e-10)
        assert fps.stability.item() == "saddle" and fps.n_unstable.item() == 1
        assert "input" not in fps and "input_channel" not in fps.dims

    def test_constant_input(self):
        a, _, _ = linear_system()
        bmat = np.random.default_rng(2).normal(size=(4, 2))
        at, bt = torch.tensor(a), torch.tensor(bmat)
        x = np.array([0.5, -1.0])
        fps = compute_fixed_points(
            lambda h, u: h @ at.T + u @ bt.T, np.zeros((5, 4)), x, device="cpu", quiet=True
        )
        assert fps.sizes["fixed_point"] == 1
        np.testing.assert_allclose(
            fps.state.values[0], np.linalg.solve(np.eye(4) - a, bmat @ x), atol=1e-10
        )
        np.testing.assert_allclose(fps.input.values[0], x)
        np.testing.assert_allclose(fps.input_jacobian.values[0], bmat, atol=1e-12)

    def test_points_with_different_inputs_are_not_merged(self):
        a, _, _ = linear_system()
        at = torch.tensor(a)
        bmat = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
        inputs = np.array([[1.0, 0.0]] * 3 + [[1.0, 5.0]] * 3)  # same drive B x, different x
        fps = compute_fixed_points(
            lambda h, u: h @ at.T + u @ bmat.T, np.zeros((6, 4)), inputs, device="cpu", quiet=True
        )
        assert fps.sizes["fixed_point"] == 2
        np.testing.assert_allclose(fps.state.values[0], fps.state.values[1], atol=1e-10)
        assert sorted(fps.input.values[:, 1].tolist()) == [0.0, 5.0]
        assert fps.attrs["n_duplicates"] == 4

    def test_noise_on_initial_states_is_seeded(self):
        a, _, b = linear_system()
        at, bt = torch.tensor(a), torch.tensor(b)
        kw = dict(device="cpu", quiet=True, n_iter=0, n_newton=0, q_slow=1e9, dedupe_tol=0.0)
        step = lambda h, x: h @ at.T + bt  # noqa: E731
        one = compute_fixed_points(step, np.zeros((3, 4)), noise_scale=0.1, seed=3, **kw)
        two = compute_fixed_points(step, np.zeros((3, 4)), noise_scale=0.1, seed=3, **kw)
        other = compute_fixed_points(step, np.zeros((3, 4)), noise_scale=0.1, seed=4, **kw)
        np.testing.assert_array_equal(one.state.values, two.state.values)
        assert not np.allclose(np.sort(one.state.values, 0), np.sort(other.state.values, 0))
        assert 0 < np.abs(one.state.values).max() < 1.0


class TestSlowPointsAndFiltering:
    EPS = 1e-3

    def ghost(self, h, x):  # saddle-node ghost: no fixed point, a slow point at 0
        return h + self.EPS + h**2

    def test_ghost_gives_one_slow_point(self):
        fps = compute_fixed_points(
            self.ghost, np.linspace(-1, 1, 50)[:, None], device="cpu", quiet=True
        )
        assert fps.sizes["fixed_point"] == 1
        assert fps.kind.item() == "slow"
        assert fps.q.item() == pytest.approx(self.EPS**2 / 2, rel=1e-3)
        assert abs(fps.state.item()) < 1e-2
        assert fps.stability.item() == "marginal"  # dF/dh = 1 + 2h ≈ 1

    def test_slow_points_above_q_slow_are_dropped(self):
        fps = compute_fixed_points(
            self.ghost, np.linspace(-1, 1, 20)[:, None], q_slow=1e-8, device="cpu", quiet=True
        )
        assert fps.sizes["fixed_point"] == 0
        assert fps.attrs["n_nonconverged"] == 20
        assert fps.state.shape == (0, 1) and fps.eigenvalues.shape == (0, 1)

    def test_outliers_far_from_the_initial_states_are_dropped(self):
        def step(h, x):  # fixed points at 0 and 100
            return h - 0.005 * h * (h - 100.0)

        init = np.concatenate([np.linspace(-1, 1, 20), [99.0]])[:, None]
        kept = compute_fixed_points(step, init, outlier_tol=None, device="cpu", quiet=True)
        np.testing.assert_allclose(np.sort(kept.state.values[:, 0]), [0.0, 100.0], atol=1e-9)
        dropped = compute_fixed_points(step, init, outlier_tol=2.0, device="cpu", quiet=True)
        np.testing.assert_allclose(dropped.state.values[:, 0], [0.0], atol=1e-9)
        assert dropped.attrs["n_outliers"] == 1

    def test_candidates_that_blow_up_are_dropped(self):
        init = np.array([[-1.3], [-0.2], [0.3], [1.2], [1e120]])  # 1e120 ** 3 overflows
        fps = compute_fixed_points(lambda h, x: h**3, init, device="cpu", quiet=True)
        np.testing.assert_allclose(np.sort(fps.state.values[:, 0]), [-1.0, 0.0, 1.0], atol=1e-12)
        assert fps.attrs["n_nonconverged"] == 1


class TestClassifyStability:
    def test_classes_for_maps(self):
        lam = np.array([[0.9, -0.5], [1.2, -1.1], [1.2, 0.3], [0.9995, 0.1], [0.8 + 0.8j, 0.1]])
        assert classify_stability(lam).tolist() == [
            "stable",
            "unstable",
            "saddle",
            "marginal",
            "saddle",  # |0.8 + 0.8i| = 1.13 > 1
        ]
        assert classify_stability(lam[3:4], marginal_tol=1e-4).tolist() == ["stable"]
        assert classify_stability(np.array([[1.0 + 1e-3j, 0.5]])).tolist() == ["marginal"]


def small_rnn(seed=1, n=12, activation="tanh"):
    torch.manual_seed(seed)
    return neurosim.models.RateRNN(
        3, n, 2, activation=activation, tau=100.0, dt=20.0, gain=1.5, w_rec_init="normal"
    )


def trajectories(net, n_trials=6, t=30, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(n_trials, t, 3)), dtype=torch.float32)
    with torch.no_grad():
        y, h = net(x, noise=False)
    valid = np.ones((n_trials, t), bool)
    valid[0, 20:] = False
    state = h.numpy().copy()
    state[0, 20:] = 1e6  # padding: must never be sampled
    return neurosim.build_trajectories(
        state=state,
        inputs=x.numpy(),
        outputs=y.numpy(),
        targets=np.zeros((n_trials, t), int),
        mask=np.ones((n_trials, t), np.float32),
        valid=valid,
        dt=20.0,
        trials=pd.DataFrame({"coh": [0.0, 0.5, 0.5, 1.0, 1.0, 0.0][:n_trials]}),
        unit_coords=net.unit_coords(),
    )


class TestRateRNN:
    def test_fixed_points_of_a_float32_model_in_float64(self):
        net = small_rnn()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        ds = trajectories(net)
        x = np.array([0.3, -0.2, 0.1])
        fps = compute_fixed_points(
            net.step, sample_states(ds, 64, seed=0, noise_scale=0.2), x, device="cpu", quiet=True
        )
        fixed = fps.kind.values == "fixed"
        assert fixed.sum() == 3  # bistable: two attractors and the saddle between them
        assert sorted(fps.stability.values[fixed]) == ["saddle", "stable", "stable"]
        assert fps.state.dtype == np.float64 and fps.attrs["dtype"] == "float64"
        assert fps.attrs["dt"] == 20.0 and "time_constant" in fps
        ref = copy.deepcopy(net).double()
        with torch.no_grad():
            h = torch.tensor(fps.state.values)
            u = torch.tensor(x).expand(len(h), -1)
            speed = (ref.step(h, u) - h).norm(dim=1).numpy()
        assert speed[fixed].max() < 1e-9
        np.testing.assert_allclose(0.5 * speed**2, fps.q.values, rtol=1e-6, atol=1e-25)
        for key, value in net.state_dict().items():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, before[key], rtol=0, atol=0)

    def test_float32_on_request(self):
        net = small_rnn()
        x = np.array([0.3, -0.2, 0.1])
        init = np.random.default_rng(0).normal(size=(32, 12))
        fps = compute_fixed_points(net.step, init, x, dtype=torch.float32, device="cpu", quiet=True)
        assert fps.attrs["dtype"] == "float32"
        assert sorted(fps.stability.values[fps.kind.values == "fixed"]) == [
            "saddle",
            "stable",
            "stable",
        ]

    def test_autonomous_call_of_a_model_that_needs_input_is_explained(self):
        net = small_rnn()
        with pytest.raises(TypeError, match="pass inputs"):
            compute_fixed_points(net.step, np.zeros((2, 12)), device="cpu", quiet=True)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            (dict(initial_states=np.zeros(3)), "initial_states must be a 2-D"),
            (dict(initial_states=np.full((2, 3), np.nan)), "initial_states must hold finite"),
            (dict(inputs=np.zeros((5, 2))), r"inputs must be None, one input \[I\]"),
            (dict(lr=-1.0), "lr must be a finite number > 0"),
            (dict(n_iter=1.5), "n_iter must be an integer"),
            (dict(q_slow=1e-14), "q_slow must be a number >= tol_q"),
            (dict(outlier_tol=0.0), "outlier_tol must be"),
            (dict(dtype=torch.int64), "dtype must be torch.float32 or torch.float64"),
            (dict(device="tpu"), "device must be"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        args = dict(step=tanh_step, initial_states=np.zeros((2, 3)), quiet=True, device="cpu")
        with pytest.raises(ValueError, match=match):
            compute_fixed_points(**(args | kwargs))

    def test_step_returning_the_wrong_shape(self):
        with pytest.raises(ValueError, match="shaped like h"):
            compute_fixed_points(lambda h, x: h[:, :1], np.zeros((2, 3)), device="cpu")


class TestComputeLinearisation:
    def test_rate_rnn_matches_analytic_and_finite_differences(self):
        net = small_rnn(activation="tanh")
        before = {k: v.clone() for k, v in net.state_dict().items()}
        rng = np.random.default_rng(0)
        h, x = rng.normal(size=12), rng.normal(size=3)
        lin = compute_linearisation(net.step, h, x, device="cpu")
        alpha = net.alpha
        w = net.w_rec.detach().double().numpy()
        w_in = net.w_in.detach().double().numpy()
        j = (1 - alpha) * np.eye(12) + alpha * w * (1 - np.tanh(h) ** 2)[None, :]
        np.testing.assert_allclose(lin.jacobian.values, j, atol=1e-12)
        np.testing.assert_allclose(lin.input_jacobian.values, alpha * w_in, atol=1e-12)
        ref = copy.deepcopy(net).double()
        f = lambda v, u: ref.step(torch.tensor(v)[None], torch.tensor(u)[None])[0].detach().numpy()  # noqa: E731
        d = 1e-6
        fd = np.stack([(f(h + d * e, x) - f(h - d * e, x)) / (2 * d) for e in np.eye(12)], 1)
        fd_in = np.stack([(f(h, x + d * e) - f(h, x - d * e)) / (2 * d) for e in np.eye(3)], 1)
        np.testing.assert_allclose(lin.jacobian.values, fd, atol=1e-8)
        np.testing.assert_allclose(lin.input_jacobian.values, fd_in, atol=1e-8)
        assert lin.q.item() == pytest.approx(0.5 * np.sum((f(h, x) - h) ** 2))
        for key, value in net.state_dict().items():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, before[key], rtol=0, atol=0)

    def test_eigenpairs_of_a_linear_map(self):
        a, lam, _ = linear_system()
        at = torch.tensor(a)
        lin = compute_linearisation(lambda h, x: h @ at.T, np.ones(4), device="cpu")
        np.testing.assert_allclose(lin.eigenvalues.values, lam, atol=1e-10)
        vec = lin.eigenvectors.values
        np.testing.assert_allclose(a @ vec, vec * lin.eigenvalues.values[None, :], atol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(vec, axis=0), 1.0)
        assert "input_jacobian" not in lin and lin.jacobian.dims == ("unit", "unit_from")

    def test_bad_point(self):
        with pytest.raises(ValueError, match=r"h must be one state \[N\]"):
            compute_linearisation(tanh_step, np.zeros((2, 3)), device="cpu")


class TestSampleStates:
    def test_draws_valid_steps_only(self):
        ds = trajectories(small_rnn())
        s = sample_states(ds, 500, seed=1)
        assert s.shape == (500, 12) and s.dtype == np.float64
        assert np.abs(s).max() < 1e5  # the padding sentinel is never drawn
        pool = ds.state.values[ds.valid.values]
        assert np.isin(s[:, 0], pool[:, 0]).all()

    def test_seeded_and_noisy(self):
        ds = trajectories(small_rnn())
        np.testing.assert_array_equal(sample_states(ds, 10, seed=2), sample_states(ds, 10, seed=2))
        noisy = sample_states(ds, 10, seed=2, noise_scale=0.5)
        assert not np.isin(noisy[:, 0], ds.state.values[..., 0]).any()
        with pytest.raises(ValueError, match="n must be a positive integer"):
            sample_states(ds, 0)


class TestPlotFixedPoints:
    def test_one_marker_per_fixed_point(self, tanh_fps):
        fig = plot_fixed_points(tanh_fps)
        assert isinstance(fig, Figure)
        points = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "None"]
        assert sum(len(ln.get_xdata()) for ln in points) == 27
        assert {ln.get_label() for ln in points} == {"stable", "unstable", "saddle"}

    def test_with_trajectories_and_pca(self, tmp_path):
        net = small_rnn()
        ds = trajectories(net)
        x = np.array([0.3, -0.2, 0.1])
        fps = compute_fixed_points(
            net.step, sample_states(ds, 32, seed=0), x, device="cpu", quiet=True
        )
        pca = compute_pca(ds, n_components=3)
        fig = plot_fixed_points(fps, pca, ds, path=tmp_path / "fp.png")
        lines = fig.axes[0].lines
        assert sum(ln.get_linestyle() != "None" for ln in lines) == ds.sizes["trial"]
        points = [ln for ln in lines if ln.get_linestyle() == "None"]
        assert sum(len(ln.get_xdata()) for ln in points) == fps.sizes["fixed_point"]
        assert (tmp_path / "fp.png").stat().st_size > 0
        fig2 = plot_fixed_points(fps, pca)  # trajectories from pca.projection
        assert sum(ln.get_linestyle() != "None" for ln in fig2.axes[0].lines) == ds.sizes["trial"]


@pytest.mark.gpu
def test_cuda_matches_cpu(tanh_fps):
    grid = np.linspace(-1.4, 1.4, 8)
    init = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    fps = compute_fixed_points(tanh_step, init, device="cuda", dt=10.0, quiet=True)
    assert fps.attrs["device"].startswith("cuda")
    order = lambda d: np.lexsort(d.state.values.T)  # noqa: E731
    np.testing.assert_allclose(
        fps.state.values[order(fps)], tanh_fps.state.values[order(tanh_fps)], atol=1e-10
    )
