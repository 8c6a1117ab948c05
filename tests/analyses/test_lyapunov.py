"""Lyapunov spectra: exact answers for linear maps, published ones for Hénon, sum rules,
J (not Jᵀ) propagation, partial spectra, the direct two-trajectory check, and errors."""

import copy
import math

import numpy as np
import pytest
import torch

import paradigms
from analyses import compute_lyapunov_spectrum, compute_max_lyapunov_direct
from analyses._lyapunov import _MODES
from neurosim.models import RateRNN

CPU = {"device": "cpu", "quiet": True}
LN_B = math.log(0.3)
HENON_L1 = 0.41922  # Sprott, "Chaos and Time-Series Analysis" (2003), table A.1


def henon(h, x):
    return torch.stack([1 - 1.4 * h[:, 0] ** 2 + h[:, 1], 0.3 * h[:, 0]], dim=1)


def henon_h0(b, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).uniform(-0.1, 0.1, (b, 2)))


def linear(a):
    a = torch.as_tensor(a, dtype=torch.float64)
    return lambda h, x: h @ a.T


def switched(mats):
    """h_{t+1} = A_{j(t)} h_t with A_j picked by the one-hot input x_t."""
    a = torch.as_tensor(np.stack(mats), dtype=torch.float64)
    return lambda h, x: torch.einsum("bk,kij,bj->bi", x, a, h)


def rate_net(n, g, alpha=0.1, seed=0):
    """Euler step (dt/τ = alpha) of τ dh/dt = -h + W tanh h, W_ij ~ N(0, g²/N)."""
    w = torch.from_numpy(np.random.default_rng(seed).normal(0.0, g / math.sqrt(n), (n, n)))
    return (lambda h, x: h + alpha * (torch.tanh(h) @ w.T - h)), w.numpy()


def rate_h0(b, n, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).normal(0.0, 1.0, (b, n)))


def log_abs_eig(m):
    return np.sort(np.log(np.abs(np.linalg.eigvals(m))))[::-1]


def rot_scale(r, theta):
    c, s = math.cos(theta), math.sin(theta)
    return r * np.array([[c, -s], [s, c]])


def block_diag(*blocks):
    n = sum(b.shape[0] for b in blocks)
    out, i = np.zeros((n, n)), 0
    for b in blocks:
        out[i : i + b.shape[0], i : i + b.shape[0]] = b
        i += b.shape[0]
    return out


def periodic_matrices():
    """3×3 matrices whose period-3 products in both orders have real eigenvalues of distinct moduli."""
    rng = np.random.default_rng(20)
    mats = [np.eye(3) + rng.normal(0, 0.8, (3, 3)) for _ in range(3)]
    return mats


def one_hot_schedule(n, period=3):
    return np.eye(period)[np.arange(n) % period]


class TestLinearMaps:
    def test_normal_matrix_gives_log_abs_eigenvalues(self):
        rot = rot_scale(1.0, 0.4)
        sym = rot @ np.diag([1.1, -0.35]) @ rot.T  # symmetric, eigenvalues 1.1 and -0.35
        a = block_diag(rot_scale(1.5, 0.7), rot_scale(0.6, 2.0), sym)
        ds = compute_lyapunov_spectrum(linear(a), np.ones((2, 6)), n_steps=400, warmup=100, **CPU)
        expected = log_abs_eig(a)
        np.testing.assert_allclose(ds["exponents"].values, np.tile(expected, (2, 1)), atol=1e-6)
        np.testing.assert_allclose(ds["mean"].values, expected, atol=1e-6)

    def test_constant_non_normal_matrix(self):
        a = np.array([[1.2, 5.0, -3.0], [0.0, 0.7, 8.0], [0.0, 0.0, -0.3]])
        q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
        a = q @ a @ q.T  # non-normal, not triangular
        ds = compute_lyapunov_spectrum(linear(a), np.ones(3), n_steps=300, warmup=100, **CPU)
        np.testing.assert_allclose(ds["exponents"].values[0], log_abs_eig(a), atol=1e-9)

    def test_periodic_product_propagates_with_j_not_its_transpose(self):
        a1, a2, a3 = periodic_matrices()
        exact = log_abs_eig(a3 @ a2 @ a1) / 3  # Q <- A3 A2 A1 Q over one period
        transposed = log_abs_eig(a1 @ a2 @ a3) / 3  # Q <- A3ᵀ A2ᵀ A1ᵀ Q = (A1 A2 A3)ᵀ Q
        assert np.abs(exact - transposed).max() > 0.05  # a Jᵀ implementation would fail
        n_steps, warmup = 600, 150
        ds = compute_lyapunov_spectrum(
            switched([a1, a2, a3]),
            np.ones((3, 3)),
            one_hot_schedule(warmup + n_steps),
            n_steps=n_steps,
            warmup=warmup,
            **CPU,
        )
        np.testing.assert_allclose(ds["exponents"].values, np.tile(exact, (3, 1)), atol=1e-9)
        # what a Jᵀ implementation computes: the same run with every Aᵀ
        wrong = compute_lyapunov_spectrum(
            switched([a1.T, a2.T, a3.T]),
            np.ones((3, 3)),
            one_hot_schedule(warmup + n_steps),
            n_steps=n_steps,
            warmup=warmup,
            **CPU,
        )
        np.testing.assert_allclose(wrong["mean"].values, transposed, atol=1e-9)

    def test_finite_product_equals_qr_of_the_product(self):
        # No warm-up: Σ log R_ii over T steps = log|diag R| of qr(J_T ⋯ J_1 Q_0), exactly,
        # with Q_0 drawn by the documented recipe.
        mats = periodic_matrices()
        b, n, t = 2, 3, 6  # short: the plain product loses its small directions to rounding
        gen = torch.Generator().manual_seed(0)
        cols = [torch.randn(b, n, generator=gen, dtype=torch.float64) for _ in range(n)]
        q0 = np.linalg.qr(torch.stack(cols, 2).numpy())[0]
        prod = np.eye(3)
        for s in range(t):
            prod = mats[s % 3] @ prod
        expected = [np.log(np.abs(np.diag(np.linalg.qr(prod @ q)[1]))) for q in q0]
        ds = compute_lyapunov_spectrum(
            switched(mats), np.ones((b, n)), one_hot_schedule(t), n_steps=t, warmup=0, **CPU
        )
        np.testing.assert_allclose(ds["exponents"].values * t, expected, atol=1e-10)

    def test_dt_sets_the_time_unit(self):
        a = np.diag([math.exp(0.5), math.exp(-1.0)])
        kw = {"n_steps": 50, "warmup": 20, **CPU}
        per_step = compute_lyapunov_spectrum(linear(a), np.ones(2), **kw)
        per_ms = compute_lyapunov_spectrum(linear(a), np.ones(2), dt=20.0, **kw)
        np.testing.assert_allclose(per_step["mean"].values, [0.5, -1.0], atol=1e-9)
        np.testing.assert_allclose(per_ms["mean"].values * 20.0, per_step["mean"].values)


class TestKaplanYorkeAndEntropy:
    @staticmethod
    def spectrum_of(exponents, **kw):
        a = np.diag(np.exp(exponents))
        return compute_lyapunov_spectrum(
            linear(a), np.ones((2, len(exponents))), n_steps=100, warmup=60, **CPU, **kw
        )

    def test_full_spectrum(self):
        ds = self.spectrum_of([0.5, 0.2, -1.0])
        np.testing.assert_allclose(ds["kaplan_yorke"].values, 2.7, atol=1e-9)
        np.testing.assert_allclose(float(ds["kaplan_yorke_of_mean"]), 2.7, atol=1e-9)
        np.testing.assert_allclose(ds["entropy_rate"].values, 0.7, atol=1e-9)
        assert not ds["kaplan_yorke_truncated"].any() and not ds["kaplan_yorke_of_mean_truncated"]

    def test_all_negative_is_zero(self):
        ds = self.spectrum_of([-0.1, -0.5])
        assert (ds["kaplan_yorke"].values == 0).all() and (ds["entropy_rate"].values == 0).all()

    def test_partial_spectrum_with_nonnegative_sums_is_flagged(self):
        ds = self.spectrum_of([0.5, 0.2, -1.0], n_exponents=2)
        assert (ds["kaplan_yorke"].values == 2).all() and ds["kaplan_yorke_truncated"].all()
        assert bool(ds["kaplan_yorke_of_mean_truncated"])

    def test_volume_expanding_full_spectrum_is_n(self):
        ds = self.spectrum_of([0.5, -0.2])
        assert (ds["kaplan_yorke"].values == 2).all() and not ds["kaplan_yorke_truncated"].any()


class TestHenon:
    @pytest.fixture(scope="class")
    def ds(self):
        return compute_lyapunov_spectrum(
            henon, henon_h0(16), n_steps=4000, warmup=100, trace_every=1000, **CPU
        )

    def test_published_exponents(self, ds):
        mean = ds["mean"].values
        assert abs(mean[0] - HENON_L1) < 0.01
        assert abs(mean[1] - (LN_B - HENON_L1)) < 0.01
        assert 0 < ds["sem"].values[0] < 0.01
        assert abs(float(ds["kaplan_yorke_of_mean"]) - 1.258) < 0.01

    def test_sum_is_ln_b_per_trajectory(self, ds):
        # det J = -b at every point, so Σ log R_ii = n·ln b up to rounding
        np.testing.assert_allclose(ds["exponents"].values.sum(1), LN_B, rtol=0, atol=1e-12)

    def test_trace_ends_at_the_result(self, ds):
        assert list(ds["checkpoint"].values) == [1000, 2000, 3000, 4000]
        assert ds["trace"].dims == ("trajectory", "checkpoint", "exponent")
        np.testing.assert_array_equal(ds["trace"].values[:, -1], ds["exponents"].values)

    def test_first_checkpoint_is_the_shorter_run(self, ds):
        short = compute_lyapunov_spectrum(henon, henon_h0(16), n_steps=1000, warmup=100, **CPU)
        np.testing.assert_allclose(ds["trace"].values[:, 0], short["exponents"].values, rtol=1e-12)

    def test_schema_and_attrs(self, ds):
        assert ds["exponents"].dims == ("trajectory", "exponent")
        assert list(ds["exponent"].values) == [1, 2]
        assert ds["kaplan_yorke"].dims == ("trajectory",) and ds.sizes["trajectory"] == 16
        for key, value in {"dt": 1.0, "n_steps": 4000, "warmup": 100, "qr_every": 1}.items():
            assert ds.attrs[key] == value
        assert ds.attrs["dtype"] == "float64" and ds.attrs["device"] == "cpu"
        assert all(isinstance(v, str | int | float) for v in ds.attrs.values())


class TestSumRule:
    def test_full_sum_is_mean_log_det_jacobian_along_the_trajectory(self):
        step, _ = rate_net(6, 2.5, alpha=0.3)
        h0, warmup, n_steps = rate_h0(1, 6), 30, 300
        ds = compute_lyapunov_spectrum(step, h0, n_steps=n_steps, warmup=warmup, **CPU)
        h, logdets = h0[0], []
        for t in range(warmup + n_steps):
            if t >= warmup:
                jac = torch.autograd.functional.jacobian(lambda v: step(v[None], None)[0], h)
                logdets.append(torch.linalg.slogdet(jac).logabsdet.item())
            h = step(h[None], None)[0]
        np.testing.assert_allclose(ds["exponents"].values.sum(), np.mean(logdets), atol=1e-12)
        assert ds["exponents"].values[0, 0] > 0  # chaotic: the rule holds off fixed points


class TestRateNetworks:
    def test_stable_network_matches_its_fixed_point(self):
        n, alpha, k = 100, 0.1, 6  # τ = 1, dt = 0.1 τ: exponents per τ
        step, w = rate_net(n, 0.5, alpha)
        ds = compute_lyapunov_spectrum(
            step, rate_h0(2, n), n_exponents=k, n_steps=2000, warmup=2000, dt=alpha, **CPU
        )
        assert (ds["exponents"].values < 0).all()
        # the state decays to the fixed point 0, where J = (1 - α) I + α W exactly
        eig = np.linalg.eigvals((1 - alpha) * np.eye(n) + alpha * w)
        eig = eig[np.argsort(-np.abs(eig), kind="stable")]
        discrete = np.log(np.abs(eig[:k])) / alpha
        np.testing.assert_allclose(ds["mean"].values, discrete, atol=5e-3)
        # a complex pair's two exponents converge slowly one by one, fast as a sum
        ends, i = [], 0
        while i < k:
            i += 1 if eig[i].imag == 0 else 2
            ends.append(i)
        ends = np.array([j for j in ends if j <= k]) - 1
        assert len(ends) >= 3
        np.testing.assert_allclose(
            np.cumsum(ds["mean"].values)[ends], np.cumsum(discrete)[ends], atol=1e-3
        )
        # ... which approximates the flow's Re eig(-I + W) / τ to O(dt/τ)
        flow = np.sort(np.linalg.eigvals(w - np.eye(n)).real)[::-1][:k]
        np.testing.assert_allclose(ds["mean"].values, flow, atol=0.05)

    def test_g2_network_is_chaotic(self):
        step, _ = rate_net(200, 2.0, seed=4)
        ds = compute_lyapunov_spectrum(
            step, rate_h0(2, 200), n_exponents=3, n_steps=2000, warmup=1000, dt=0.1, **CPU
        )
        assert (ds["exponents"].values[:, 0] > 0.02).all()
        assert (ds["entropy_rate"].values > 0).all()


class TestOptions:
    @pytest.fixture(scope="class")
    def net(self):
        return rate_net(12, 2.0, alpha=0.2)[0]

    @pytest.mark.parametrize("k", [1, 4, 5])
    def test_partial_spectrum_is_the_top_of_the_full_one(self, net, k):
        kw = {"n_steps": 300, "warmup": 50, **CPU}
        full = compute_lyapunov_spectrum(net, rate_h0(3, 12), **kw)
        part = compute_lyapunov_spectrum(net, rate_h0(3, 12), n_exponents=k, **kw)
        assert part.sizes["exponent"] == k and part.attrs["n_exponents"] == k
        np.testing.assert_allclose(
            part["exponents"].values, full["exponents"].values[:, :k], atol=1e-10
        )

    @pytest.mark.parametrize("qr_every", [5, 7])
    def test_qr_every_does_not_change_the_result(self, net, qr_every):
        kw = {"n_steps": 303, "warmup": 52, **CPU}  # not multiples: a final QR closes each part
        ref = compute_lyapunov_spectrum(net, rate_h0(3, 12), **kw)
        ds = compute_lyapunov_spectrum(net, rate_h0(3, 12), qr_every=qr_every, **kw)
        assert ds.attrs["qr_every"] == qr_every
        np.testing.assert_allclose(ds["exponents"].values, ref["exponents"].values, atol=1e-9)

    def test_same_call_same_numbers_and_seed_matters(self, net):
        kw = {"n_steps": 100, "warmup": 10, "n_exponents": 3, **CPU}
        a = compute_lyapunov_spectrum(net, rate_h0(2, 12), **kw)
        b = compute_lyapunov_spectrum(net, rate_h0(2, 12), **kw)
        c = compute_lyapunov_spectrum(net, rate_h0(2, 12), seed=1, **kw)
        np.testing.assert_array_equal(a["exponents"].values, b["exponents"].values)
        assert not np.array_equal(a["exponents"].values, c["exponents"].values)

    def test_one_trajectory_has_nan_sem(self, net):
        ds = compute_lyapunov_spectrum(net, rate_h0(1, 12)[0], n_steps=50, warmup=5, **CPU)
        assert ds.sizes["trajectory"] == 1 and np.isnan(ds["sem"].values).all()
        assert np.isfinite(ds["mean"].values).all()

    def test_sem_is_the_standard_error_over_trajectories(self, net):
        ds = compute_lyapunov_spectrum(net, rate_h0(5, 12), n_steps=50, warmup=5, **CPU)
        x = ds["exponents"].values
        np.testing.assert_allclose(ds["sem"].values, x.std(0, ddof=1) / math.sqrt(5))

    def test_float32_is_close_to_float64(self, net):
        kw = {"n_steps": 200, "warmup": 20, "n_exponents": 3, **CPU}
        w64 = compute_lyapunov_spectrum(net, rate_h0(2, 12), **kw)
        w = torch.from_numpy(np.random.default_rng(0).normal(0.0, 2.0 / math.sqrt(12), (12, 12)))
        w = w.float()

        def step32(h, x):
            return h + 0.2 * (torch.tanh(h) @ w.T - h)

        w32 = compute_lyapunov_spectrum(step32, rate_h0(2, 12), dtype=torch.float32, **kw)
        assert w32.attrs["dtype"] == "float32"
        np.testing.assert_allclose(w32["exponents"].values, w64["exponents"].values, atol=1e-3)


class TestModels:
    @pytest.fixture(scope="class")
    def setup(self):
        torch.manual_seed(0)
        net = RateRNN(3, 16, 3, activation="tanh", w_rec_init="normal", gain=1.5, tau=100, dt=20)
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        inputs = task.batch(4, np.random.default_rng(0)).inputs
        return net, inputs

    def test_input_driven_rate_rnn_via_net_step(self, setup):
        net, inputs = setup
        t = inputs.shape[1]
        ds = compute_lyapunov_spectrum(
            net.step, net.initial_state(4), inputs, n_steps=t - 4, warmup=4, dt=net.dt, **CPU
        )
        assert ds.sizes == {"trajectory": 4, "exponent": 16}
        assert ds.attrs["dtype"] == "float64" and ds.attrs["step"] == "RateRNN.step"
        assert np.isfinite(ds["exponents"].values).all()
        # the model itself is untouched (still float32), and the result is that of a float64 copy
        assert net.w_rec.dtype == torch.float32 and net.w_rec.requires_grad
        net64 = copy.deepcopy(net).double()
        ref = compute_lyapunov_spectrum(
            lambda h, x: net64.step(h, x),
            net.initial_state(4).double(),
            inputs,
            n_steps=t - 4,
            warmup=4,
            dt=net.dt,
            **CPU,
        )
        np.testing.assert_allclose(ds["exponents"].values, ref["exponents"].values, atol=1e-12)

    def test_a_module_whose_forward_is_the_step(self):
        class Map(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = torch.nn.Parameter(torch.tensor([[0.5, 2.0], [0.0, 0.25]]))

            def forward(self, h, x):
                return h @ self.a.T

        m = Map()
        ds = compute_lyapunov_spectrum(m, np.ones(2), n_steps=100, warmup=50, **CPU)
        np.testing.assert_allclose(ds["exponents"].values[0], np.log([0.5, 0.25]), atol=1e-9)
        assert ds.attrs["step"] == "Map" and m.a.dtype == torch.float32

    def test_inputs_shared_by_trajectories(self, setup):
        net, inputs = setup
        kw = {"n_steps": 10, "warmup": 2, "n_exponents": 3, **CPU}
        shared = compute_lyapunov_spectrum(net.step, torch.zeros(2, 16), inputs[0], **kw)
        tiled = compute_lyapunov_spectrum(net.step, torch.zeros(2, 16), inputs[[0, 0]], **kw)
        np.testing.assert_array_equal(shared["exponents"].values, tiled["exponents"].values)


class TestBackends:
    def test_every_backend_computes_j_times_q(self):
        step, w = rate_net(5, 1.5, alpha=0.5)
        h = rate_h0(3, 5)
        q = torch.linalg.qr(torch.randn(3, 5, 2, dtype=torch.float64))[0]
        d = 1 - torch.tanh(h) ** 2
        jac = 0.5 * torch.eye(5, dtype=torch.float64) + 0.5 * torch.from_numpy(w) * d[:, None, :]
        for mode, fn in _MODES.items():
            out, jq = fn(step, h, None, q)
            torch.testing.assert_close(out, step(h, None), msg=mode)
            torch.testing.assert_close(jq, jac @ q, msg=mode)

    def test_falls_back_when_a_backend_cannot_trace_the_step(self):
        class Cube(torch.autograd.Function):  # forward-mode rule only: no double backward
            @staticmethod
            def forward(x):
                return x**3

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_forward(inputs[0])

            @staticmethod
            def jvp(ctx, t):
                (x,) = ctx.saved_tensors
                return 3 * x**2 * t

            @staticmethod
            def backward(ctx, g):
                raise NotImplementedError

        a = torch.tensor([[0.5, 0.1], [0.0, 0.4]], dtype=torch.float64)
        ds = compute_lyapunov_spectrum(
            lambda h, x: Cube.apply(h) * 0.1 + h @ a.T,
            np.ones(2) * 1e-3,
            n_steps=200,
            warmup=50,
            **CPU,
        )
        assert ds.attrs["jvp_backend"] in ("vmap", "dual")
        np.testing.assert_allclose(ds["exponents"].values[0], np.log([0.5, 0.4]), atol=1e-3)

    def test_non_differentiable_step_is_a_clear_error(self):
        def numpy_step(h, x):
            return torch.from_numpy(np.tanh(h.detach().numpy()))

        with pytest.raises(RuntimeError, match="could not differentiate step"):
            compute_lyapunov_spectrum(numpy_step, np.ones(3), n_steps=5, warmup=0, **CPU)


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"n_exponents": 0}, "n_exponents"),
            ({"n_exponents": 3}, "n_exponents"),
            ({"n_exponents": 1.5}, "n_exponents"),
            ({"qr_every": 0}, "qr_every"),
            ({"warmup": -1}, "warmup"),
            ({"n_steps": 0}, "n_steps"),
            ({"dt": 0.0}, "dt"),
            ({"dt": float("nan")}, "dt"),
            ({"trace_every": 0}, "trace_every"),
            ({"trace_every": 11}, "trace_every"),
            ({"dtype": torch.int64}, "dtype"),
            ({"device": "tpu"}, "device"),
            ({"seed": -1}, "seed"),
        ],
    )
    def test_bad_arguments_name_the_field(self, kwargs, field):
        kw = {"n_steps": 10, "warmup": 2, **CPU, **kwargs}
        with pytest.raises(ValueError, match=field):
            compute_lyapunov_spectrum(henon, henon_h0(2), **kw)

    @pytest.mark.parametrize(
        ("h0", "inputs", "match"),
        [
            (np.ones((2, 2, 2)), None, "h0 must be a real"),
            (np.array([np.nan, 0.0]), None, "h0 must be finite"),
            (np.ones((2, 2)), np.ones((2, 5, 1)), r"T >= warmup \+ n_steps = 12"),
            (np.ones((2, 2)), np.ones((3, 12, 1)), "inputs has 3 trajectories but h0 has 2"),
            (np.ones((2, 2)), np.full((2, 12, 1), np.inf), "inputs must be finite"),
            (np.ones((2, 2)), np.ones(12), "inputs must be None or"),
        ],
    )
    def test_bad_states_and_inputs(self, h0, inputs, match):
        with pytest.raises(ValueError, match=match):
            compute_lyapunov_spectrum(henon, h0, inputs, n_steps=10, warmup=2, **CPU)

    def test_step_with_wrong_output(self):
        with pytest.raises(ValueError, match="step must return the next states"):
            compute_lyapunov_spectrum(lambda h, x: h[:, :1], np.ones(2), n_steps=3, warmup=0, **CPU)
        with pytest.raises(ValueError, match="step must be a callable"):
            compute_lyapunov_spectrum("henon", np.ones(2), n_steps=3, warmup=0, **CPU)

    def test_diverging_step(self):
        with pytest.raises(ValueError, match="non-finite"):
            compute_lyapunov_spectrum(
                lambda h, x: h * 1e100, np.ones(2), n_steps=10, warmup=0, **CPU
            )

    def test_autonomous_model_step_explains_the_none_input(self):
        net = RateRNN(1, 4, 1)
        with pytest.raises(TypeError, match=r"step\(h, None\)"):
            compute_lyapunov_spectrum(net.step, np.zeros(4), n_steps=3, warmup=0, **CPU)


class TestDirect:
    def test_henon_published_value(self):
        ds = compute_max_lyapunov_direct(henon, henon_h0(8), n_steps=5000, warmup=100, **CPU)
        assert abs(float(ds["mean"]) - HENON_L1) < 0.01
        assert ds["exponent"].dims == ("trajectory",) and not ds["collapsed"].any()

    def test_agrees_with_the_spectrum_on_henon(self):
        kw = {"n_steps": 2000, "warmup": 100, **CPU}
        direct = compute_max_lyapunov_direct(henon, henon_h0(4), **kw)
        spectrum = compute_lyapunov_spectrum(henon, henon_h0(4), **kw)
        np.testing.assert_allclose(
            direct["exponent"].values, spectrum["exponents"].values[:, 0], atol=1e-5
        )

    def test_agrees_with_the_spectrum_on_a_chaotic_rate_network(self):
        step, _ = rate_net(200, 2.0, seed=4)
        kw = {"n_steps": 2000, "warmup": 1000, "dt": 0.1, **CPU}
        direct = compute_max_lyapunov_direct(step, rate_h0(2, 200), **kw)
        spectrum = compute_lyapunov_spectrum(step, rate_h0(2, 200), n_exponents=1, **kw)
        assert (direct["exponent"].values > 0.02).all()
        np.testing.assert_allclose(
            direct["exponent"].values, spectrum["exponents"].values[:, 0], atol=1e-5
        )

    def test_linear_map_and_renorm_every(self):
        a = np.array([[1.1, 3.0], [0.0, 0.5]])
        kw = {"n_steps": 300, "warmup": 100, **CPU}
        one = compute_max_lyapunov_direct(linear(a), np.ones((2, 2)), **kw)
        five = compute_max_lyapunov_direct(linear(a), np.ones((2, 2)), renorm_every=5, **kw)
        np.testing.assert_allclose(one["exponent"].values, math.log(1.1), atol=1e-9)
        np.testing.assert_allclose(five["exponent"].values, one["exponent"].values, atol=1e-9)

    def test_seeded_and_dtype_scaled_eps(self):
        kw = {"n_steps": 200, "warmup": 10, **CPU}
        a = compute_max_lyapunov_direct(henon, henon_h0(2), **kw)
        b = compute_max_lyapunov_direct(henon, henon_h0(2), **kw)
        np.testing.assert_array_equal(a["exponent"].values, b["exponent"].values)
        assert a.attrs["eps"] == math.sqrt(np.finfo(np.float64).eps)
        c = compute_max_lyapunov_direct(henon, henon_h0(2), dtype=torch.float32, **kw)
        assert c.attrs["eps"] == math.sqrt(np.finfo(np.float32).eps)
        assert abs(float(c["mean"]) - float(a["mean"])) < 0.05

    def test_one_trajectory_and_collapse(self):
        ds = compute_max_lyapunov_direct(
            lambda h, x: 0 * h + 1.0, np.ones(3), n_steps=5, warmup=0, **CPU
        )
        assert ds.sizes["trajectory"] == 1 and np.isnan(float(ds["sem"]))
        assert ds["collapsed"].all() and ds["exponent"].values[0] < -100

    def test_model_step_runs_on_a_float64_copy(self):
        torch.manual_seed(0)
        net = RateRNN(1, 8, 1, activation="tanh", w_rec_init="normal", gain=1.5)
        ds = compute_max_lyapunov_direct(
            net.step, torch.zeros(2, 8), np.zeros((30, 1)), n_steps=25, warmup=5, **CPU
        )
        assert ds.attrs["dtype"] == "float64" and net.w_rec.dtype == torch.float32

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"eps": 0.0}, "eps"), ({"renorm_every": 0}, "renorm_every"), ({"warmup": -2}, "warmup")],
    )
    def test_bad_arguments_name_the_field(self, kwargs, field):
        kw = {"n_steps": 10, "warmup": 2, **CPU, **kwargs}
        with pytest.raises(ValueError, match=field):
            compute_max_lyapunov_direct(henon, henon_h0(2), **kw)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
class TestCuda:
    def test_cpu_and_cuda_spectra_agree(self):
        step, w = rate_net(64, 2.0)
        wc = torch.from_numpy(w).cuda()

        def step_cuda(h, x):
            return h + 0.1 * (torch.tanh(h) @ wc.T - h)

        kw = {"n_steps": 500, "warmup": 100, "n_exponents": 8, "quiet": True}
        cpu = compute_lyapunov_spectrum(step, rate_h0(4, 64), device="cpu", **kw)
        gpu = compute_lyapunov_spectrum(step_cuda, rate_h0(4, 64), device="cuda", **kw)
        assert gpu.attrs["device"].startswith("cuda")
        np.testing.assert_allclose(gpu["exponents"].values, cpu["exponents"].values, atol=1e-6)
        hen = compute_lyapunov_spectrum(henon, henon_h0(8), n_steps=500, warmup=50, device="cuda")
        np.testing.assert_allclose(hen["exponents"].values.sum(1), LN_B, atol=1e-12)

    def test_module_step_moves_to_cuda(self):
        torch.manual_seed(0)
        net = RateRNN(1, 32, 1, activation="tanh", w_rec_init="normal", gain=1.5)
        kw = {"n_steps": 100, "warmup": 10, "quiet": True}
        x = np.zeros((110, 1))
        cpu = compute_lyapunov_spectrum(net.step, torch.zeros(2, 32) + 0.1, x, device="cpu", **kw)
        gpu = compute_lyapunov_spectrum(net.step, torch.zeros(2, 32) + 0.1, x, device="cuda", **kw)
        np.testing.assert_allclose(gpu["exponents"].values, cpu["exponents"].values, atol=1e-8)
