"""Complex-valued layers (Löwe et al. 2022): the magnitude/phase update and its invariants."""

import math

import numpy as np
import pytest
import torch

from neurosim.models._complex import (
    ComplexConv2d,
    ComplexConvTranspose2d,
    ComplexLinear,
    combine,
    from_complex,
    polar_parts,
    real_to_polar,
    safe_magnitude,
    stable_angle,
    to_complex,
)


def _positive_weights(layer):
    with torch.no_grad():
        layer.f.weight.copy_(layer.f.weight.abs())
        layer.magnitude_bias.uniform_(0.0, 0.5)
        layer.phase_bias.uniform_(-1.0, 1.0)
    return layer


def _layers():
    torch.manual_seed(0)
    return [
        (ComplexLinear(6, 5, norm=None), torch.nn.functional.linear, torch.rand(4, 6)),
        (ComplexConv2d(2, 3, stride=2, norm=None), None, torch.rand(2, 2, 8, 8)),
        (ComplexConvTranspose2d(3, 2, norm=None), None, torch.rand(2, 3, 4, 4)),
    ]


class TestRealLimit:
    @pytest.mark.parametrize("index", [0, 1, 2])
    def test_zero_phase_nonnegative_equals_real_layer_plus_bias(self, index):
        layer, _, x = _layers()[index]
        _positive_weights(layer)
        real = layer.f(x)  # the bias-free real layer
        assert bool((real >= 0).all())
        m, phi = layer.pre_activation(*real_to_polar(x))
        torch.testing.assert_close(m, real + layer.magnitude_bias, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(phi, layer.phase_bias.expand_as(phi), rtol=0, atol=1e-6)
        m_out, phi_out = layer(*real_to_polar(x))  # with the ReLU (all positive here)
        torch.testing.assert_close(m_out, torch.relu(real + layer.magnitude_bias))
        torch.testing.assert_close(phi_out, phi)

    def test_relu_applies_to_negative_pre_activations(self):
        layer = ComplexLinear(3, 2, norm=None)
        with torch.no_grad():
            layer.f.weight.fill_(0.1)
            layer.magnitude_bias.fill_(-1.0)
        m, _ = layer(*real_to_polar(torch.ones(1, 3)))
        assert float(m.detach().abs().max()) == 0.0


class TestPhase:
    @pytest.mark.parametrize("index", [0, 1, 2])
    def test_global_phase_shift_rotates_output(self, index):
        layer, _, x = _layers()[index]
        layer.eval()
        m0, phi0 = layer(*real_to_polar(x))
        theta = 1.234
        m1, phi1 = layer(x, torch.full_like(x, theta))
        torch.testing.assert_close(m1, m0, rtol=1e-5, atol=1e-6)
        z0, z1 = to_complex(m0, phi0 + theta), to_complex(m1, phi1)
        torch.testing.assert_close(z1, z0, rtol=1e-4, atol=1e-5)

    def test_antiphase_inputs_cancel_in_psi(self):
        layer = ComplexLinear(2, 3, norm=None)
        with torch.no_grad():
            layer.f.weight.copy_(torch.tensor([[1.0, 1.0], [0.5, 0.5], [2.0, 2.0]]))
        mag = torch.tensor([[0.7, 0.7]])
        anti = torch.tensor([[0.3, 0.3 + math.pi]])
        psi = layer.psi(mag, anti).detach()
        assert float(psi.abs().max()) < 1e-6
        m, _ = layer.pre_activation(mag, anti)  # only the classic term χ = f(|z|) is left
        chi = layer.f(mag)
        torch.testing.assert_close(m, 0.5 * chi + layer.magnitude_bias, atol=1e-6, rtol=0)
        m_in, _ = layer.pre_activation(mag, torch.tensor([[0.3, 0.3]]))  # in phase: full χ
        torch.testing.assert_close(m_in, chi + layer.magnitude_bias, atol=1e-6, rtol=1e-6)

    def test_phase_of_mixture_is_weighted_circular_mean(self):
        layer = ComplexLinear(2, 1, norm=None)
        with torch.no_grad():
            layer.f.weight.fill_(1.0)
        _, phi = layer.pre_activation(torch.ones(1, 2), torch.tensor([[0.2, 0.8]]))
        assert float((phi - layer.phase_bias).detach()) == pytest.approx(0.5, abs=1e-6)


class TestStability:
    def test_gradient_finite_where_psi_vanishes(self):
        torch.manual_seed(1)
        layer = ComplexLinear(2, 4, norm="layer")
        with torch.no_grad():
            layer.f.weight.copy_(torch.ones(4, 2))
        mag = torch.tensor([[0.5, 0.5], [1e-20, 1e-20]], requires_grad=True)
        phase = torch.tensor([[0.0, math.pi], [0.0, 0.5]], requires_grad=True)
        m, phi = layer(mag, phase)
        (m.sum() + phi.sum()).backward()
        grads = [mag.grad, phase.grad] + [p.grad for p in layer.parameters()]
        assert all(bool(torch.isfinite(g).all()) for g in grads)

    def test_stable_angle_and_magnitude(self):
        re = torch.tensor([0.0, 1.0, -1.0, 0.0])
        im = torch.tensor([0.0, 0.0, 1e-12, 2.0])
        ang = stable_angle(re, im)
        np.testing.assert_allclose(ang.numpy(), [math.pi / 2, 0.0, math.pi, math.pi / 2], atol=1e-6)
        np.testing.assert_allclose(safe_magnitude(re, im).numpy(), [0, 1, 1, 2], atol=1e-6)

    def test_stable_angle_nudges_real_psi_off_the_real_axis(self):
        ang = stable_angle(torch.tensor([2.0, -2.0, 2.0]), torch.tensor([0.0, 0.0, -1e-9]))
        assert float(ang[0]) == pytest.approx(0.5e-8, rel=1e-3)
        assert float(ang[1]) == pytest.approx(math.pi, abs=1e-6)
        assert float(ang[2]) > 0

    def test_real_inputs_leave_the_real_subspace(self):
        # Zero-phase inputs make every ψ real; there the gradient of every magnitude with
        # respect to every phase vanishes. The stable angle's nudge gives the phase biases
        # a (tiny) gradient, which Adam turns into steps of size lr: phases start to differ.
        torch.manual_seed(0)
        first, second = ComplexLinear(6, 8, norm=None), ComplexLinear(8, 3, norm=None)
        with torch.no_grad():
            first.f.weight.abs_()  # every ψ of the first layer real and positive
        m, phi = second(*first(*real_to_polar(torch.rand(16, 6))))
        m.sum().backward()
        g = first.phase_bias.grad
        assert bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0
        opt = torch.optim.Adam(first.parameters(), lr=0.05)
        opt.step()
        spread = first.phase_bias.detach()
        assert float(spread.max() - spread.min()) > 0.05

    def test_complex_round_trip(self):
        z = torch.tensor([1 + 1j, -2 + 0.5j, -1j], dtype=torch.complex64)
        m, phi = from_complex(z)
        torch.testing.assert_close(to_complex(m, phi), z)

    def test_fused_gradients_match_autograd(self):
        g = torch.Generator().manual_seed(0)
        re = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
        im = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
        im[0, 0, 0] = 0.0  # real ψ: the stable angle's nudge
        re[0, 0, 1, :2] = im[0, 0, 1, :2] = 0.0  # ψ = 0: the magnitude's floor
        chi = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
        bm = torch.randn(1, 3, 1, 1, generator=g, dtype=torch.float64)
        bp = torch.randn(1, 3, 1, 1, generator=g, dtype=torch.float64)
        gm, gp = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))

        def grads(fn):
            xs = [t.clone().requires_grad_(True) for t in (re, im, chi, bm, bp)]
            m, phi = fn(*xs)
            torch.autograd.backward((m, phi), (gm, gp))
            return [m.detach(), phi.detach()] + [x.grad for x in xs]

        def reference(re, im, chi, bm, bp):
            return 0.5 * (safe_magnitude(re, im) + chi) + bm, stable_angle(re, im) + bp

        for a, b in zip(grads(combine), grads(reference), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        m = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
        phi = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(polar_parts, (m, phi))

    def test_combine_matches_formula(self):
        g = torch.Generator().manual_seed(0)
        re, im, chi, bm, bp = (torch.randn(5, generator=g) for _ in range(5))
        m, phi = combine(re, im, chi, bm, bp)
        psi = torch.complex(re, im)
        torch.testing.assert_close(m, 0.5 * (psi.abs() + bm) + 0.5 * (chi + bm))
        torch.testing.assert_close(torch.polar(torch.ones(5), phi - bp), psi / psi.abs())


class TestConstruction:
    def test_norm_choices_and_errors(self):
        assert isinstance(ComplexConv2d(1, 2, norm="layer").norm, torch.nn.GroupNorm)
        assert isinstance(ComplexLinear(1, 2, norm="batch").norm, torch.nn.BatchNorm1d)
        with pytest.raises(ValueError, match="norm must be one of"):
            ComplexLinear(2, 2, norm="instance")
        with pytest.raises(ValueError, match="out_features must be a positive integer"):
            ComplexLinear(2, 0)

    def test_bias_initialisation(self):
        torch.manual_seed(0)
        layer = ComplexConv2d(4, 64, kernel_size=3)
        bound = 1 / math.sqrt(4 * 9)
        assert float(layer.magnitude_bias.detach().abs().max()) <= bound
        assert float(layer.phase_bias.detach().abs().max()) == 0.0

    def test_batchnorm_on_magnitudes_only(self):
        torch.manual_seed(0)
        layer = ComplexLinear(3, 4, norm="batch")
        x = torch.rand(16, 3)
        m, phi = layer(*real_to_polar(x))
        m_pre, phi_pre = layer.pre_activation(*real_to_polar(x))
        torch.testing.assert_close(phi, phi_pre)  # the norm leaves phases alone
        norm = (m_pre - m_pre.mean(0)) / torch.sqrt(m_pre.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(m, torch.relu(norm), rtol=1e-4, atol=1e-5)
