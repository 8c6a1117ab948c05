"""Adaptive activation γ(x; n, s) (Geadah et al. 2020), its parametrisation, and its use in RateRNN."""

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import neurosim
import paradigms
from neurosim.models import AdaptiveActivation, RateRNN, build_model, resolve_activation
from neurosim.models._activations import N_MIN, S_EPS

gamma = AdaptiveActivation.gamma


def _x(half_width=6.0, k=2001, dtype=torch.float64):
    """A symmetric grid with an odd number of points: x = 0 is exactly on it."""
    return torch.arange(-(k // 2), k // 2 + 1, dtype=dtype) * (half_width / (k // 2))


def _functional(phi):
    """``(x, n_raw, s_raw) -> phi(x)`` with the raw parameters as inputs (for gradcheck)."""

    def f(x, n_raw, s_raw):
        return torch.func.functional_call(phi, {"n_raw": n_raw, "s_raw": s_raw}, (x,))

    return f


class TestFormula:
    @pytest.mark.parametrize("n", [0.5, 1.0, 3.0, 10.0])
    def test_s0_is_softplus_with_beta_n(self, n):
        x = _x()
        torch.testing.assert_close(gamma(x, n, 0.0), F.softplus(x, beta=n), rtol=1e-12, atol=0)

    @pytest.mark.parametrize("n", [0.5, 2.0, 8.0])
    def test_distance_to_relu_is_log2_over_n_at_zero(self, n):
        x = _x(k=4001)
        gap = (gamma(x, n, 0.0) - torch.relu(x)).abs()
        assert gap.max().item() == pytest.approx(math.log(2) / n, rel=1e-12)
        assert x[gap.argmax()].item() == 0.0

    @pytest.mark.parametrize("n", [0.5, 1.0, 4.0])
    def test_s1_is_the_logistic_of_nx(self, n):
        x = _x()
        torch.testing.assert_close(gamma(x, n, 1.0), torch.sigmoid(n * x), rtol=1e-12, atol=0)

    @pytest.mark.parametrize(("n", "s"), [(1.0, 0.0), (2.0, 0.5), (0.3, 0.9), (7.0, 1.0)])
    def test_value_at_zero(self, n, s):
        expected = (1 - s) * math.log(2) / n + s / 2
        assert gamma(torch.zeros((), dtype=torch.float64), n, s).item() == pytest.approx(
            expected, rel=1e-12
        )
        # the module at its (parametrised) n and s
        phi = AdaptiveActivation(n=n, s=s).double()
        n_, s_ = phi.n.item(), phi.s.item()
        value = phi(torch.zeros(1, dtype=torch.float64)).item()
        assert value == pytest.approx((1 - s_) * math.log(2) / n_ + s_ / 2, rel=1e-12)

    @pytest.mark.parametrize("per_neuron", [None, 5])
    def test_derivative_in_x_is_the_analytic_one(self, per_neuron):
        g = torch.Generator().manual_seed(0)
        n = 0.5 + 5 * torch.rand(5 if per_neuron else 1, generator=g, dtype=torch.float64)
        s = torch.rand(5 if per_neuron else 1, generator=g, dtype=torch.float64)
        phi = AdaptiveActivation(n=n, s=s, per_neuron=per_neuron).double()
        x = (3 * torch.randn(40, 5, generator=g, dtype=torch.float64)).requires_grad_()
        (dx,) = torch.autograd.grad(phi(x).sum(), x)
        n_, s_ = phi.n.detach(), phi.s.detach()
        sig = torch.sigmoid(n_ * x.detach())
        torch.testing.assert_close(dx, (1 - s_) * sig + s_ * n_ * sig * (1 - sig))


class TestParametrisation:
    @pytest.mark.parametrize(("n", "s"), [(1.0, 0.0), (5.0, 0.25), (0.01, 1.0), (50.0, 0.5)])
    def test_init_values_are_represented(self, n, s):
        phi = AdaptiveActivation(n=n, s=s)  # float32 parameters
        assert phi.n.item() == pytest.approx(n, rel=1e-6)
        assert phi.s.item() == pytest.approx(min(max(s, S_EPS), 1 - S_EPS), rel=1e-5)

    def test_module_at_s0_is_softplus_within_the_boundary_epsilon(self):
        phi = AdaptiveActivation(n=3.0, s=0.0).double()
        assert phi.s.item() == pytest.approx(S_EPS, rel=1e-5)
        x = _x()
        n = phi.n.item()  # 3 up to float32 rounding
        with torch.no_grad():
            err = (phi(x) - F.softplus(x, beta=n)).abs()
            bound = S_EPS * (torch.sigmoid(n * x) - F.softplus(x, beta=n)).abs()
        assert (err <= bound * (1 + 1e-4) + 1e-12).all()
        assert err.max() > 0  # s is S_EPS, not exactly 0 (documented)

    @pytest.mark.parametrize(("dn", "ds"), [(1, 1), (1, -1), (-1, 1), (-1, -1)])
    def test_parameters_stay_in_range_under_huge_gradient_steps(self, dn, ds):
        phi = AdaptiveActivation(n=2.0, s=0.5, per_neuron=3)
        opt = torch.optim.SGD(phi.parameters(), lr=1e4)
        for _ in range(200):
            loss = dn * phi.n.sum() + ds * phi.s.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        n, s = phi.n.detach(), phi.s.detach()
        assert torch.isfinite(n).all() and (n > 0).all()
        assert ((s >= 0) & (s <= 1)).all()
        assert torch.isfinite(phi(torch.linspace(-50, 50, 30).unsqueeze(-1).expand(30, 3))).all()
        if dn > 0:  # pushed down as far as it goes: the floor, not below
            assert n.max().item() == pytest.approx(N_MIN, rel=1e-3)
        else:
            assert n.min().item() > 1e3
        assert (s.max().item() < 1e-3) if ds > 0 else (s.min().item() > 1 - 1e-3)

    @pytest.mark.parametrize("sign", [1.0, -1.0])
    def test_parameters_stay_in_range_when_trained_through_gamma(self, sign):
        phi = AdaptiveActivation(n=2.0, s=0.5, per_neuron=3)
        opt = torch.optim.SGD(phi.parameters(), lr=1e3)
        x = torch.linspace(-5, 5, 30).unsqueeze(-1).expand(30, 3)
        for _ in range(200):
            loss = sign * phi(x).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        n, s = phi.n.detach(), phi.s.detach()
        assert torch.isfinite(n).all() and (n > 0).all() and ((s >= 0) & (s <= 1)).all()
        assert torch.isfinite(phi(x)).all()

    @pytest.mark.parametrize("per_neuron", [None, 3])
    def test_gradcheck_in_x_n_and_s(self, per_neuron):
        phi = AdaptiveActivation(n=[1.5, 4.0, 0.7][: per_neuron or 1], s=0.3, per_neuron=per_neuron)
        phi = phi.double()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
        nr = phi.n_raw.detach().clone().requires_grad_()
        sr = phi.s_raw.detach().clone().requires_grad_()
        assert torch.autograd.gradcheck(_functional(phi), (x, nr, sr))
        assert torch.autograd.gradgradcheck(_functional(phi), (x, nr, sr))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize(("n", "x"), [(1.0, 1e4), (1e4, 1.0), (5e3, 2.0), (1.0, 1e30)])
    def test_finite_values_and_gradients_at_huge_nx(self, dtype, n, x):
        phi = AdaptiveActivation(n=n, s=0.4).to(dtype)
        xs = torch.tensor([-x, 0.0, x], dtype=dtype, requires_grad=True)
        y = phi(xs)
        y.sum().backward()
        assert torch.isfinite(y).all()
        for grad in (xs.grad, phi.n_raw.grad, phi.s_raw.grad):
            assert torch.isfinite(grad).all()
        assert y[0].item() == 0.0  # γ → 0 as n·x → −∞
        assert y[2].item() == pytest.approx(0.6 * x + 0.4, rel=1e-5)  # (1−s)x + s as n·x → ∞


class TestShapesAndInit:
    def test_per_neuron_shapes_and_units_differ(self):
        phi = AdaptiveActivation(n=[1.0, 2.0, 4.0], s=[0.0, 0.5, 1.0], per_neuron=3)
        assert phi.n.shape == phi.s.shape == phi.n_raw.shape == (3,)
        x = torch.ones(2, 7, 3)
        y = phi(x)
        assert y.shape == (2, 7, 3)
        assert len(torch.unique(y[0, 0])) == 3
        with pytest.raises(ValueError, match="per_neuron=3 units; got input with last dim 4"):
            phi(torch.ones(2, 4))
        shared = AdaptiveActivation(n=2.0)
        assert shared.n.shape == () and shared(torch.ones(2, 7, 5)).shape == (2, 7, 5)

    def test_geadah_init_is_seeded_and_in_range(self):
        a = AdaptiveActivation.geadah(per_neuron=200, seed=3)
        b = AdaptiveActivation(n="geadah", per_neuron=200, seed=3)
        c = AdaptiveActivation.geadah(per_neuron=200, seed=4)
        torch.testing.assert_close(a.n, b.n)
        assert not torch.equal(a.n, c.n)
        n = a.n.detach().numpy()
        assert n.min() >= 5 and n.max() <= 7 and n.std() > 0.4
        assert a.s.max().item() == pytest.approx(S_EPS, rel=1e-4)
        shared = AdaptiveActivation.geadah(seed=3)
        assert 5 <= shared.n.item() <= 7

    def test_config_is_json_and_rebuilds(self):
        for phi in (
            AdaptiveActivation(n=2.0, s=0.1),
            AdaptiveActivation(n=[1.0, 2.0], s=[0.2, 0.3], per_neuron=2),
            AdaptiveActivation.geadah(per_neuron=6, seed=9),
        ):
            cfg = json.loads(json.dumps(phi.config()))
            assert cfg == phi.config()
            clone = resolve_activation(cfg, phi.per_neuron or 4)[0]
            torch.testing.assert_close(clone.n, phi.n)
            torch.testing.assert_close(clone.s, phi.s)

    def test_repr_shows_n_and_s(self):
        assert "n=2, s=0.5" in repr(AdaptiveActivation(n=2.0, s=0.5))
        assert "per_neuron=4, n∈[" in repr(AdaptiveActivation(per_neuron=4))


class TestResolve:
    @pytest.mark.parametrize("name", ["relu", "tanh", "softplus", "sigmoid", "retanh", "identity"])
    def test_fixed_names(self, name):
        fn, got, cfg = resolve_activation(name, 4)
        assert got == cfg == name and not isinstance(fn, torch.nn.Module)
        assert resolve_activation({"name": name}, 4)[2] == name

    @pytest.mark.parametrize(
        ("spec", "name", "shape"),
        [
            ("adaptive", "adaptive", ()),
            ("adaptive_per_neuron", "adaptive_per_neuron", (6,)),
            (
                {"name": "adaptive", "n": 5.0, "s": 0.2, "per_neuron": True},
                "adaptive_per_neuron",
                (6,),
            ),
            ({"name": "adaptive", "per_neuron": 6}, "adaptive_per_neuron", (6,)),
            ({"name": "adaptive", "n": "geadah", "seed": 2}, "adaptive", ()),
            (AdaptiveActivation(per_neuron=6), "adaptive_per_neuron", (6,)),
        ],
    )
    def test_adaptive_specs(self, spec, name, shape):
        phi, got, cfg = resolve_activation(spec, 6)
        assert isinstance(phi, AdaptiveActivation) and got == name and phi.n.shape == shape
        assert cfg["name"] == "adaptive"

    def test_other_callables_pass_through_by_class_name(self):
        fn, name, cfg = resolve_activation(torch.nn.GELU(), 4)
        assert isinstance(fn, torch.nn.GELU) and name == cfg == "GELU"

    @pytest.mark.parametrize(
        ("spec", "error", "match"),
        [
            ("swish", ValueError, r"activation must be one of \['identity'.*'adaptive'"),
            (3, TypeError, "activation must be one of .* got a int"),
            ({"name": "adaptive", "slope": 2}, ValueError, r"unknown field\(s\) \['slope'\]"),
            ({"name": "gelu"}, ValueError, "field 'name' must be one of"),
            ({"n": 2.0}, ValueError, "field 'name' must be one of"),
            ({"name": "tanh", "n": 2.0}, ValueError, r"'tanh' is fixed .* \['n'\]"),
            ({"name": "adaptive", "per_neuron": 5}, ValueError, "'per_neuron' must be true/false"),
            ({"name": "adaptive", "n": -1.0}, ValueError, "n must be finite and > 0.001"),
            ({"name": "adaptive", "n": "relu"}, ValueError, "n must be a positive number"),
            ({"name": "adaptive", "s": 1.5}, ValueError, r"s must lie in \[0, 1\]"),
            ({"name": "adaptive", "s": [0.1, 0.2]}, ValueError, "s has 2 values but per_neuron"),
            (
                {"name": "adaptive", "n": [1.0, 2.0], "per_neuron": True},
                ValueError,
                r"n must be a number or have shape \(6,\)",
            ),
            (AdaptiveActivation(per_neuron=3), ValueError, "per_neuron=3, but the model has 6"),
        ],
    )
    def test_bad_specs_name_the_problem(self, spec, error, match):
        with pytest.raises(error, match=match):
            resolve_activation(spec, 6)

    def test_bad_constructor_arguments(self):
        with pytest.raises(ValueError, match="per_neuron must be None"):
            AdaptiveActivation(per_neuron=0)
        with pytest.raises(ValueError, match="seed must be an integer"):
            AdaptiveActivation(seed=-1)
        with pytest.raises(ValueError, match="n must be a number or an array"):
            AdaptiveActivation(n=True)


class TestInRateRNN:
    def _net(self, activation, n_hidden=12):
        torch.manual_seed(0)
        return RateRNN(3, n_hidden, 3, activation=activation, tau=200.0, dt=100.0)

    def test_parameters_register_and_forward_equals_step(self):
        net = self._net("adaptive_per_neuron")
        names = dict(net.named_parameters())
        assert names["phi.n_raw"].shape == names["phi.s_raw"].shape == (12,)
        assert list(names)[0] == "w_in"  # the weights come first
        x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(1))
        _, hs = net(x, noise=False)
        h = net.initial_state(2)
        for t in range(6):
            h = net.step(h, x[:, t])
        torch.testing.assert_close(hs[:, -1], h)
        net.reset_parameters()  # leaves (n, s) alone
        assert net.phi.n.detach().allclose(torch.ones(12))

    def test_trains_and_round_trips_through_checkpoint(self, tmp_path):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        torch.manual_seed(0)
        net = RateRNN(
            task.n_inputs,
            16,
            task.n_outputs,
            activation={"name": "adaptive", "n": "geadah", "per_neuron": True, "seed": 1},
            tau=200.0,
            dt=task.dt,
        )
        n0, s0 = net.phi.n.detach().clone(), net.phi.s.detach().clone()
        res = neurosim.train(
            net,
            task,
            n_steps=6,
            batch_size=16,
            eval_every=6,
            eval_trials=32,
            checkpoint_dir=str(tmp_path / "ckpt"),
            quiet=True,
        )
        assert not torch.allclose(net.phi.n, n0) and not torch.allclose(net.phi.s, s0)
        model, meta = neurosim.load_checkpoint(res.checkpoint)
        assert meta["model"]["activation"]["per_neuron"] == 16
        assert isinstance(model.phi, AdaptiveActivation)
        torch.testing.assert_close(model.phi.n, net.phi.n, rtol=0, atol=0)
        torch.testing.assert_close(model.phi.s, net.phi.s, rtol=0, atol=0)
        clone = build_model(json.loads(json.dumps(net.config())))
        clone.load_state_dict(net.state_dict())
        x = torch.randn(3, 8, task.n_inputs)
        torch.testing.assert_close(clone(x, noise=False)[0], net(x, noise=False)[0])
        torch.testing.assert_close(model(x, noise=False)[0], net(x, noise=False)[0])

    def test_fixed_activation_config_is_unchanged(self):
        assert self._net("tanh").config()["activation"] == "tanh"

    def test_simulate_with_a_weight_perturbation(self):
        net = self._net("adaptive")
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        ds = neurosim.simulate(
            net,
            task,
            4,
            seed=0,
            perturbation=[None, neurosim.Perturbation("weights", "scale", strength=0.5)],
            quiet=True,
        )
        assert ds.sizes["condition"] == 2 and np.isfinite(ds["output"].values).all()
