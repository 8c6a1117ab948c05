"""RateRNN: the model contract, the Euler step, and errors."""

import math

import numpy as np
import pytest
import torch

from neurosim.models import RateRNN, build_model


def _net(**kw):
    torch.manual_seed(0)
    return RateRNN(3, 24, 4, **{"tau": 100.0, "dt": 20.0, **kw})


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus", "retanh"])
def test_forward_equals_looped_step(activation):
    net = _net(activation=activation)
    x = torch.randn(5, 30, 3, generator=torch.Generator().manual_seed(1))
    eps = net.sample_noise((5, 30, 24), generator=torch.Generator().manual_seed(2))
    y, hs = net(x, noise=eps)
    h = net.initial_state(5)
    for t in range(30):
        h = net.step(h, x[:, t], eps[:, t])
        torch.testing.assert_close(hs[:, t], h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, net.readout(hs))


def test_step_is_the_euler_step_of_the_ode():
    net = _net(activation="tanh", sigma_rec=0.0)
    h, x = torch.randn(2, 24), torch.randn(2, 3)
    with torch.no_grad():
        dhdt = (-h + torch.tanh(h) @ net.w_rec.T + x @ net.w_in.T + net.b) / net.tau
        torch.testing.assert_close(net.step(h, x), h + net.dt * dhdt)


def test_noise_scale_is_sqrt_2_alpha_sigma():
    net = _net(sigma_rec=0.1)
    eps = net.sample_noise((400, 50, 24), generator=torch.Generator().manual_seed(0))
    expected = math.sqrt(2 * 20.0 / 100.0) * 0.1
    assert abs(eps.std().item() / expected - 1) < 0.01
    assert _net(sigma_rec=0.0).sample_noise((2, 3, 24)) is None


def test_seeded_noise_is_reproducible_and_eval_is_deterministic():
    net = _net()
    x = torch.randn(3, 10, 3)
    a = net(x, noise=True, generator=torch.Generator().manual_seed(5))[1]
    b = net(x, noise=True, generator=torch.Generator().manual_seed(5))[1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    net.eval()
    torch.testing.assert_close(net(x)[1], net(x)[1], rtol=0, atol=0)
    assert not torch.equal(net(x)[1], a)


def test_zero_input_zero_state_is_a_fixed_point_without_bias():
    net = _net(activation="tanh", sigma_rec=0.0)
    h = torch.zeros(1, 24)
    for _ in range(10):
        h = net.step(h, torch.zeros(1, 3))
    assert torch.count_nonzero(h) == 0


def test_unit_coords_and_config_round_trip():
    net = _net()
    coords = net.unit_coords()
    assert len(coords["module"]) == 24 and set(coords["kind"]) == {"rate"}
    clone = build_model(net.config())
    clone.load_state_dict(net.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(clone(x, noise=False)[0], net(x, noise=False)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": -1.0}, "tau"),
        ({"dt": 200.0, "tau": 100.0}, "dt"),
        ({"activation": "swish"}, "activation must be one of"),
        ({"sigma_rec": -0.1}, "sigma_rec"),
        ({"w_rec_init": "xavier"}, "w_rec_init"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RateRNN(3, 8, 2, **kwargs)


def test_build_model_rejects_unknown_class():
    with pytest.raises(ValueError, match="'class' must be one of"):
        build_model({"class": "LSTM"})


def test_gradients_reach_all_weights():
    net = _net()
    y, _ = net(torch.randn(2, 6, 3), noise=False)
    y.sum().backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
