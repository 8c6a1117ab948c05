"""LatentRNN: the model contract on the generator state, the readout, the encoder, errors."""

import json

import numpy as np
import pytest
import torch

import analyses
from neurosim.models import RateRNN
from neurosim.models._latent import LatentRNN, kl_to_standard_normal


def _model(**kw):
    torch.manual_seed(0)
    return LatentRNN(**{"n_neurons": 12, "n_latent": 6, "n_inputs": 2, "encoder_hidden": 8,
                        "tau": 100.0, "dt": 20.0, **kw})  # fmt: skip


def _counts(b=5, t=15, n=12, seed=1):
    return torch.poisson(torch.full((b, t, n), 1.5), generator=torch.Generator().manual_seed(seed))


class TestContract:
    @pytest.mark.parametrize("n_inputs", [0, 2])
    def test_forward_equals_looped_step_with_noise(self, n_inputs):
        net = _model(n_inputs=n_inputs, sigma_rec=0.1)
        x = torch.randn(4, 20, n_inputs, generator=torch.Generator().manual_seed(1))
        h0 = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
        eps = net.sample_noise((4, 20, 6), generator=torch.Generator().manual_seed(3))
        y, hs = net(x, state=h0, noise=eps)
        h = h0
        for t in range(20):
            h = net.step(h, x[:, t], eps[:, t])
            torch.testing.assert_close(hs[:, t], h, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(y, net.readout(hs))
        assert y.shape == (4, 20, 12) and hs.shape == (4, 20, 6)

    def test_step_is_the_generator_rate_rnn_step(self):
        net = _model()
        assert isinstance(net.generator, RateRNN) and net.n_units == net.generator.n_units == 6
        h, x = torch.randn(3, 6), torch.randn(3, 2)
        torch.testing.assert_close(net.step(h, x), net.generator.step(h, x), rtol=0, atol=0)
        assert net.dt == net.generator.dt and net.recurrent_weights == "generator.w_rec"
        assert net.recurrent_weights in dict(net.named_parameters())

    def test_autonomous_step_takes_empty_or_no_input(self):
        net = _model(n_inputs=0)
        h = torch.randn(3, 6)
        a = net.step(h, torch.zeros(3, 0))
        torch.testing.assert_close(a, net.step(h, None), rtol=0, atol=0)
        torch.testing.assert_close(a, net.generator.step(h, torch.zeros(3, 1)), rtol=0, atol=0)
        assert not net.generator.w_in.requires_grad and torch.count_nonzero(net.generator.w_in) == 0

    def test_unit_coords_and_sizes(self):
        net = _model()
        coords = net.unit_coords()
        assert set(coords["module"]) == {"latent"} and len(coords["kind"]) == 6
        assert (net.n_inputs, net.n_units, net.n_outputs) == (2, 6, 12)

    @pytest.mark.parametrize("kw", [{}, {"n_factors": 3, "likelihood": "gaussian"},
                                    {"n_inputs": 0, "held_in": [0, 3, 5]}])  # fmt: skip
    def test_config_round_trip(self, kw):
        net = _model(**kw)
        cfg = json.loads(json.dumps(net.config()))
        assert cfg["class"] == "LatentRNN"
        clone = LatentRNN(**{k: v for k, v in cfg.items() if k != "class"})
        clone.load_state_dict(net.state_dict())
        assert clone.config() == net.config()
        counts, x = _counts(), torch.randn(5, 15, net.n_inputs)
        with torch.no_grad():
            h0, _ = net.infer_initial_state(counts, x if net.n_inputs else None)
            torch.testing.assert_close(clone.infer_initial_state(counts, x)[0], h0)
            torch.testing.assert_close(clone(x, state=h0)[0], net(x, state=h0)[0])

    def test_build_model_when_registered(self):
        from neurosim.models import _MODEL_CLASSES, build_model

        if "LatentRNN" not in _MODEL_CLASSES:
            pytest.skip("LatentRNN not registered in neurosim.models yet")
        net = _model()
        assert build_model(net.config()).config() == net.config()


class TestReadout:
    def test_poisson_readout_is_exp_of_linear_and_positive(self):
        net = _model()
        h = 3.0 * torch.randn(7, 6)
        with torch.no_grad():
            z = torch.tanh(h) @ net.generator.w_out.T + net.generator.b_out
            y = net.readout(h)
        torch.testing.assert_close(y, torch.exp(z))
        assert (y > 0).all() and torch.equal(net.readout_offset(), net.generator.b_out)

    def test_gaussian_readout_with_factors_is_linear(self):
        net = _model(likelihood="gaussian", n_factors=3)
        h = torch.randn(7, 6)
        with torch.no_grad():
            f = torch.tanh(h) @ net.generator.w_out.T
            torch.testing.assert_close(net.factors(h), f)
            torch.testing.assert_close(net.readout(h), net.observation(f))
        assert net.factors(h).shape == (7, 3) and not net.generator.b_out.requires_grad

    def test_readout_does_not_overflow(self):
        net = _model()
        with torch.no_grad():
            net.readout_offset().fill_(1e4)
        assert torch.isfinite(net.readout(torch.zeros(2, 6))).all()


class TestEncoder:
    def test_encoder_ignores_held_out_neurons_exactly(self):
        net = _model(held_in=[0, 2, 4, 6, 8, 10])
        counts = _counts()
        changed = counts.clone()
        changed[..., 1::2] = torch.poisson(torch.full_like(changed[..., 1::2], 7.0))
        with torch.no_grad():
            a = net.infer_initial_state(counts, torch.zeros(5, 15, 2))
            b = net.infer_initial_state(changed, torch.zeros(5, 15, 2))
            c = net.infer_initial_state(counts[..., ::2], torch.zeros(5, 15, 2))
        for u, v, w in zip(a, b, c, strict=True):
            assert torch.equal(u, v) and torch.equal(u, w)
        changed[..., 0] += 1  # a held-in neuron does matter
        with torch.no_grad():
            assert not torch.equal(net.infer_initial_state(changed)[0], a[0])

    def test_sampling_is_seeded_and_reparameterised(self):
        net = _model()
        counts = _counts()
        with torch.no_grad():
            mean, logvar = net.infer_initial_state(counts)
            s1, _ = net.infer_initial_state(counts, sample=True,
                                             generator=torch.Generator().manual_seed(4))  # fmt: skip
            s2, _ = net.infer_initial_state(counts, sample=True,
                                             generator=torch.Generator().manual_seed(4))  # fmt: skip
        eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(4))
        assert torch.equal(s1, s2)
        torch.testing.assert_close(s1, mean + torch.exp(0.5 * logvar) * eps)

    def test_kl_matches_torch_distributions(self):
        mean, logvar = torch.randn(4, 6), torch.randn(4, 6)
        q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
        p = torch.distributions.Normal(torch.zeros(4, 6), torch.ones(4, 6))
        expected = torch.distributions.kl_divergence(q, p).sum(-1)
        torch.testing.assert_close(kl_to_standard_normal(mean, logvar), expected)


class TestAnalysesApply:
    def test_fixed_point_and_lyapunov_of_a_contracting_generator(self):
        net = _model(n_inputs=0)
        with torch.no_grad():
            net.generator.w_rec.mul_(0.5 / torch.linalg.matrix_norm(net.generator.w_rec, 2))
        h0 = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
        fps = analyses.compute_fixed_points(net.step, h0, n_iter=200, device="cpu", quiet=True)
        assert fps.sizes["fixed_point"] == 1 and str(fps["stability"].values[0]) == "stable"
        np.testing.assert_allclose(fps["state"].values[0], 0.0, atol=1e-6)
        alpha = net.dt / net.tau  # Jacobian at 0: (1 − α) I + α W φ'(0), φ'(0) = 1 for tanh
        w = net.generator.w_rec.detach().double().numpy()
        np.testing.assert_allclose(fps["jacobian"].values[0], (1 - alpha) * np.eye(6) + alpha * w,
                                   atol=1e-6)  # fmt: skip
        lyap = analyses.compute_lyapunov_spectrum(
            net.step, h0[:2], n_steps=100, warmup=10, dt=net.dt, device="cpu", quiet=True
        )
        assert (lyap["mean"].values < 0).all()

    def test_simulate_and_weight_perturbation_apply(self):
        import neurosim
        import paradigms

        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        net = _model(n_inputs=task.n_inputs, dt=task.dt, tau=5 * task.dt)
        ds = neurosim.simulate(net, task, 3, 0, quiet=True)
        assert ds["output"].shape[-1] == 12 and set(ds["module"].values) == {"latent"}
        assert (ds["output"].values > 0).all()  # expected counts per bin
        lesion = neurosim.Perturbation(target="weights", operation="scale", strength=1.0)
        cut = neurosim.simulate(net, task, 3, 0, perturbation=[lesion], quiet=True)
        with torch.no_grad():  # W_rec scaled to zero: the same run with a zeroed generator.w_rec
            net.generator.w_rec.zero_()
        np.testing.assert_allclose(
            cut["state"].values[0], neurosim.simulate(net, task, 3, 0, quiet=True)["state"].values,
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_neurons": 0}, "n_neurons"),
        ({"n_inputs": -1}, "n_inputs"),
        ({"likelihood": "binomial"}, "likelihood"),
        ({"held_in": [0, 12]}, "held_in"),
        ({"held_in": []}, "held_in"),
        ({"n_factors": 0}, "n_factors"),
        ({"dt": 200.0}, "dt"),
    ],
)
def test_constructor_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


def test_encoder_input_errors():
    net = _model(held_in=[0, 1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        net.infer_initial_state(-_counts())
    with pytest.raises(ValueError, match="NaN"):
        net.infer_initial_state(_counts() * float("nan"))
    with pytest.raises(ValueError, match="5 neurons"):
        net.infer_initial_state(_counts(n=5))
    with pytest.raises(ValueError, match="inputs must be"):
        net.infer_initial_state(_counts(), torch.zeros(5, 15, 3))
    assert net.infer_initial_state(_counts()[..., :3])[0].shape == (5, 6)
