"""ComplexRNN: the complex magnitude/phase update as a recurrent model under the model contract."""

import math

import numpy as np
import pytest
import torch

import neurosim
import paradigms
from neurosim.models._complex import ComplexLinear, to_complex
from neurosim.models._complex_rnn import ComplexRNN, phase_locking


def _inputs(b=4, t=12, i=3, seed=0):
    return torch.rand(b, t, i, generator=torch.Generator().manual_seed(seed))


class TestContract:
    def test_step_equals_forward(self):
        net = ComplexRNN(3, 10, 2, tau=60.0, dt=20.0, seed=0)
        x = _inputs()
        y, hs = net(x)
        h = net.initial_state(4)
        for t in range(x.shape[1]):
            h = net.step(h, x[:, t])
            torch.testing.assert_close(h, hs[:, t], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(net.readout(hs), y)
        assert hs.shape == (4, 12, 20)
        m, phi = net.split(hs.detach())
        assert bool((m >= 0).all()) and float(phi.abs().max()) <= math.pi + 1e-6

    def test_unit_coords_name_magnitude_and_phase(self):
        coords = ComplexRNN(2, 5, 1, name="binder").unit_coords()
        assert list(coords["kind"]) == ["magnitude"] * 5 + ["phase"] * 5
        assert set(coords["module"]) == {"binder"}
        assert list(coords["index_in_module"]) == [0, 1, 2, 3, 4] * 2

    def test_seeded_determinism_and_config(self):
        a, b, c = (
            ComplexRNN(3, 6, 2, seed=5),
            ComplexRNN(3, 6, 2, seed=5),
            ComplexRNN(3, 6, 2, seed=6),
        )
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k
        assert not torch.equal(a.w_rec, c.w_rec)
        cfg = a.config()
        rebuilt = ComplexRNN(**{k: v for k, v in cfg.items() if k != "class"})
        torch.testing.assert_close(rebuilt(_inputs())[1], a(_inputs())[1], rtol=0, atol=0)
        assert cfg["class"] == "ComplexRNN"

    def test_noise_is_seeded_and_enters_real_and_imaginary_parts(self):
        net = ComplexRNN(3, 6, 2, sigma_rec=0.1, seed=0)
        x = _inputs()
        g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
        _, h1 = net(x, noise=True, generator=g())
        _, h2 = net(x, noise=True, generator=g())
        _, h0 = net(x, noise=False)
        torch.testing.assert_close(h1, h2, rtol=0, atol=0)
        assert not torch.allclose(h1, h0)

    def test_validation(self):
        with pytest.raises(ValueError, match="norm must be one of"):
            ComplexRNN(2, 3, 1, norm="batch")
        with pytest.raises(ValueError, match="must not exceed tau"):
            ComplexRNN(2, 3, 1, tau=10.0, dt=20.0)
        with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
            ComplexRNN(2, 0, 1)


class TestUpdate:
    def test_non_leaky_step_is_the_complex_layer_on_state_and_input(self):
        net = ComplexRNN(3, 5, 1, tau=20.0, dt=20.0, complex_inputs=True, seed=0)
        with torch.no_grad():
            net.phase_bias.uniform_(-1, 1)
        layer = ComplexLinear(5 + 3, 5, norm="layer")
        with torch.no_grad():
            layer.f.weight.copy_(torch.cat([net.w_rec, net.w_in], 1))
            layer.magnitude_bias.copy_(net.magnitude_bias)
            layer.phase_bias.copy_(net.phase_bias)
        g = torch.Generator().manual_seed(2)
        state = torch.cat([torch.rand(4, 5, generator=g), 3 * torch.rand(4, 5, generator=g)], 1)
        x = torch.cat([torch.rand(4, 3, generator=g), torch.randn(4, 3, generator=g)], 1)
        new = net.step(state, x)
        m, phi = layer(
            torch.cat([state[:, :5], x[:, :3]], 1), torch.cat([state[:, 5:], x[:, 3:]], 1)
        )
        torch.testing.assert_close(
            to_complex(*net.split(new)), to_complex(m, phi), rtol=1e-5, atol=1e-6
        )

    def test_leak_interpolates_in_the_complex_plane(self):
        net = ComplexRNN(2, 4, 1, tau=100.0, dt=25.0, seed=1)
        full = ComplexRNN(2, 4, 1, tau=25.0, dt=25.0, seed=1)
        g = torch.Generator().manual_seed(0)
        state = torch.cat([torch.rand(3, 4, generator=g), torch.rand(3, 4, generator=g)], 1)
        x = torch.rand(3, 2, generator=g)
        z = to_complex(*net.split(state))
        target = to_complex(*full.split(full.step(state, x)))
        torch.testing.assert_close(
            to_complex(*net.split(net.step(state, x))),
            0.75 * z + 0.25 * target,
            rtol=1e-5,
            atol=1e-6,
        )

    def test_global_phase_shift_of_state_and_inputs(self):
        net = ComplexRNN(3, 6, 2, complex_inputs=True, readout="magnitude", seed=3)
        with torch.no_grad():
            net.phase_bias.uniform_(-2, 2)
            net.h0.copy_(torch.cat([torch.rand(6), torch.rand(6)]))
        g = torch.Generator().manual_seed(4)
        x = torch.cat([torch.rand(2, 8, 3, generator=g), torch.randn(2, 8, 3, generator=g)], -1)
        theta = 0.9
        shifted = x.clone()
        shifted[..., 3:] += theta
        y0, h0 = net(x)
        h_init = net.initial_state(2).clone()
        h_init[:, 6:] += theta
        y1, h1 = net(shifted, h_init)
        m0, p0 = net.split(h0)
        m1, p1 = net.split(h1)
        torch.testing.assert_close(m1, m0, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            to_complex(m1, p1), to_complex(m0, p0 + theta), rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(y1, y0, rtol=1e-4, atol=1e-5)  # magnitudes: phase-blind

    def test_gradient_finite_from_the_zero_state(self):
        net = ComplexRNN(3, 6, 2, seed=0)
        x = _inputs(t=5).requires_grad_(True)
        y, _ = net(x)
        y.sum().backward()
        grads = [x.grad] + [p.grad for p in net.parameters() if p.requires_grad]
        assert all(bool(torch.isfinite(g).all()) for g in grads)


class TestIntegration:
    def test_simulate_labels_magnitude_and_phase_units(self):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        net = ComplexRNN(task.n_inputs, 8, task.n_outputs, dt=task.dt, tau=200.0, seed=0)
        ds = neurosim.simulate(net, task, n_trials=3, seed=0)
        kinds = ds["kind"].values
        assert (kinds == "magnitude").sum() == 8 and (kinds == "phase").sum() == 8
        phase = ds["state"].sel(unit=ds["kind"] == "phase")
        assert float(np.abs(phase).max()) <= math.pi + 1e-6

    def test_train_runs(self):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        torch.manual_seed(0)
        net = ComplexRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt, tau=200.0, seed=0)
        res = neurosim.train(net, task, n_steps=10, eval_every=10, eval_trials=32, quiet=True)
        assert np.isfinite(res.history["loss"]).all()


class TestSynchrony:
    def test_phase_locking_values(self):
        lab = np.array([1, 1, 2, 2, 0])
        locked = phase_locking(np.array([0.2, 0.2, 0.2 + np.pi, 0.2 + np.pi, 1.0]), None, lab)
        assert locked["within"] == pytest.approx(1.0) and locked["between"] == pytest.approx(
            0.0, abs=1e-12
        )
        same = phase_locking(np.full(5, 0.4), None, lab)
        assert same["between"] == pytest.approx(1.0) and same["contrast"] == pytest.approx(0.0)
        spread = phase_locking(np.array([0.0, np.pi, 0.0, np.pi, 0.0]), np.ones(5), lab)
        assert spread["within"] == pytest.approx(0.0, abs=1e-12)

    def test_hook_uses_states_and_a_given_measure(self):
        net = ComplexRNN(1, 4, 1, seed=0)
        states = torch.tensor([[1.0, 2.0, 1.0, 1.0, 0.1, 0.1, 3.0, 3.0]])
        seen = {}

        def measure(phase, magnitude, labels):
            seen.update(phase=phase, magnitude=magnitude, labels=labels)
            return "ok"

        assert net.synchrony(states, np.array([1, 1, 2, 2]), measure) == "ok"
        np.testing.assert_allclose(seen["magnitude"], [[1.0, 2.0, 1.0, 1.0]])
        np.testing.assert_allclose(seen["phase"], [[0.1, 0.1, 3.0, 3.0]])
        assert seen["labels"].shape == (1, 4)
        r = net.synchrony(states, np.array([1, 1, 2, 2]))
        assert r["within"] == pytest.approx(1.0) and r["between"] == pytest.approx(math.cos(1.45))


def test_build_model_rebuilds_a_complex_rnn_from_its_config():
    import torch

    from neurosim.models import ComplexRNN, build_model

    net = ComplexRNN(3, 8, 2, seed=0)
    copy = build_model(net.config())
    assert type(copy) is ComplexRNN and copy.config() == net.config()
    copy.load_state_dict(net.state_dict())
    x = torch.rand(2, 5, 3)
    torch.testing.assert_close(copy(x)[0], net(x)[0], rtol=0, atol=0)
