"""Synchrony-based complex-valued units (Löwe, Lippe, Rudolph & Welling 2022).

A complex activation ``z = m·e^{iφ}`` is carried as a **pair of real tensors**
``(magnitude, phase)`` of the same shape (not as ``torch.complex64``): every layer
needs ``Re z``, ``Im z`` and ``|z|`` of its input and returns ``m`` and ``φ``, and keeping
the two parts real lets one real call of the layer handle all three at once (the
three are stacked along the batch dimension), keeps autograd real and lets the
states of recurrent models stay real tensors as the model contract asks.
:func:`to_complex` / :func:`from_complex` convert to and from ``torch.complex64``.

For a bias-free real layer ``f`` (``Linear``, ``Conv2d``, ``ConvTranspose2d``) a complex
layer computes::

    ψ = f(Re z) + i·f(Im z)          (phases interact: synchrony term)
    χ = f(|z|)                        (classic term: binds by magnitude only)
    m = ½(|ψ| + b_m) + ½(χ + b_m)
    φ = arg ψ + b_φ                   (stable angle where |ψ| ≈ 0)
    z_out = ReLU(Norm(m))·e^{iφ}      (the norm acts on magnitudes only)

Real inputs enter with zero phase (:func:`real_to_polar`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

Polar = tuple[torch.Tensor, torch.Tensor]
"""A complex activation as ``(magnitude, phase)``: two real tensors of one shape."""

_NORMS = ("batch", "layer", None)
_EPS = 1e-8
_TINY = 1e-30  # floor of |ψ|² below which its gradient is cut (float32 keeps it)


def stable_angle(real: torch.Tensor, imag: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """``atan2(imag, real)`` with a finite gradient everywhere.

    Where ``|imag| < eps`` the imaginary part is replaced by ``eps`` (and its gradient cut),
    as in Löwe et al.'s ``stable_angle``: the denominator ``real² + imag²`` of ``atan2``'s
    gradient never falls below ``eps²``, ``ψ = 0`` gets phase ``π/2``, and a real ``ψ`` gets
    ``eps/Re ψ`` (or ``π − eps/|Re ψ|``) instead of exactly 0 (or π). The nudge matters: a
    network fed real (zero-phase) inputs starts on the real subspace, where the gradient of
    every magnitude with respect to every phase vanishes, so in exact arithmetic its phases
    would never leave 0 and π; the nudge (and, in float32, the rounding of π) gives them a
    tiny gradient, which Adam turns into full-size steps. It breaks the phase equivariance
    only where ``ψ`` is exactly real.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(2, requires_grad=True)
    >>> stable_angle(x, torch.tensor([0.0, 1.0])).sum().backward()
    >>> bool(torch.isfinite(x.grad).all())
    True
    """
    safe = torch.where(imag.abs() < eps, torch.full_like(imag, eps), imag)
    return torch.atan2(safe, real)


def safe_magnitude(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """``|real + i·imag|`` whose gradient stays finite at 0 (floored at ``1e-15``).

    Examples
    --------
    >>> import torch
    >>> float(safe_magnitude(torch.tensor(3.0), torch.tensor(4.0)))
    5.0
    """
    return torch.sqrt(torch.clamp(real * real + imag * imag, min=_TINY))


def real_to_polar(x: torch.Tensor) -> Polar:
    """A real input entering with zero phase: ``(x, 0)`` (negative entries: ``(|x|, π)``).

    Examples
    --------
    >>> import torch
    >>> m, phi = real_to_polar(torch.ones(2, 3))
    >>> float(phi.abs().sum())
    0.0
    """
    if bool((x >= 0).all()):
        return x, torch.zeros_like(x)
    return x.abs(), torch.where(x < 0, math.pi, 0.0).to(x.dtype)


def to_complex(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """``magnitude·e^{i·phase}`` as a ``torch.complex64`` (or complex128) tensor."""
    return torch.polar(magnitude, phase)


def from_complex(z: torch.Tensor) -> Polar:
    """``(|z|, stable arg z)`` of a complex tensor."""
    return safe_magnitude(z.real, z.imag), stable_angle(z.real, z.imag)


class _Combine(torch.autograd.Function):
    """Fused :func:`combine`: one pass forward, the analytic gradient backward."""

    @staticmethod
    def forward(ctx, psi_re, psi_im, chi, magnitude_bias, phase_bias):  # type: ignore[override]
        small = psi_im.abs() < _EPS
        safe_im = torch.where(small, _EPS, psi_im)
        re2 = psi_re * psi_re
        sq = torch.addcmul(re2, psi_im, psi_im)
        floored = sq < _TINY
        r = sq.clamp_(min=_TINY).sqrt_()
        half_inv_r = torch.reciprocal(r).mul_(0.5).masked_fill_(floored, 0.0)
        inv_sq_safe = re2.addcmul_(safe_im, safe_im).reciprocal_()
        m = r.add_(chi).mul_(0.5).add_(magnitude_bias)
        phi = torch.atan2(safe_im, psi_re).add_(phase_bias)
        ctx.save_for_backward(psi_re, psi_im, safe_im, half_inv_r, inv_sq_safe, small)
        ctx.bias_shapes = (magnitude_bias.shape, phase_bias.shape)
        return m, phi

    @staticmethod
    def backward(ctx, g_m, g_phi):  # type: ignore[override]
        psi_re, psi_im, safe_im, half_inv_r, inv_sq_safe, small = ctx.saved_tensors
        half = g_m * half_inv_r  # d|ψ|/dψ = ψ/|ψ|, times ½
        g_ang = g_phi * inv_sq_safe  # d atan2(y, x) = (x dy − y dx) / (x² + y²)
        g_re = torch.addcmul(half * psi_re, g_ang, safe_im, value=-1.0)
        g_im = (g_ang * psi_re).masked_fill_(small, 0.0).addcmul_(half, psi_im)
        bm, bp = ctx.bias_shapes
        return g_re, g_im, 0.5 * g_m, g_m.sum_to_size(bm), g_phi.sum_to_size(bp)


def combine(
    psi_re: torch.Tensor,
    psi_im: torch.Tensor,
    chi: torch.Tensor,
    magnitude_bias: torch.Tensor,
    phase_bias: torch.Tensor,
) -> Polar:
    """``(½(|ψ| + b_m) + ½(χ + b_m), arg ψ + b_φ)`` from the parts of ``ψ`` and ``χ``.

    ``|ψ|`` as :func:`safe_magnitude`, ``arg ψ`` as :func:`stable_angle`; computed in one
    fused autograd function (its gradient is checked against autograd's in the tests).

    Examples
    --------
    >>> import torch
    >>> m, phi = combine(torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([2.0]),
    ...                  torch.tensor([0.5]), torch.tensor([0.0]))
    >>> round(float(m), 4), round(float(phi), 4)  # ½(√2 + 2) + 0.5, π/4
    (2.2071, 0.7854)
    """
    return _Combine.apply(psi_re, psi_im, chi, magnitude_bias, phase_bias)


class _PolarParts(torch.autograd.Function):
    """``cat(m cos φ, m sin φ, m)`` along dim 0, fused."""

    @staticmethod
    def forward(ctx, magnitude, phase):  # type: ignore[override]
        c, s = torch.cos(phase), torch.sin(phase)
        n = magnitude.shape[0]
        out = magnitude.new_empty((3 * n, *magnitude.shape[1:]))
        torch.mul(magnitude, c, out=out[:n])
        torch.mul(magnitude, s, out=out[n : 2 * n])
        out[2 * n :].copy_(magnitude)
        ctx.save_for_backward(magnitude, c, s)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        magnitude, c, s = ctx.saved_tensors
        g_re, g_im, g_abs = grad.split(magnitude.shape[0], dim=0)
        g_m = torch.addcmul(g_abs, g_re, c).addcmul_(g_im, s)
        g_phi = (g_im * c).addcmul_(g_re, s, value=-1.0).mul_(magnitude)
        return g_m, g_phi


def polar_parts(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """``Re z``, ``Im z`` and ``|z|`` of ``z = m·e^{iφ}`` stacked along dim 0 (``[3B, ...]``):
    what one call of a layer's real map ``f`` turns into ``ψ`` and ``χ``.

    Examples
    --------
    >>> import math, torch
    >>> polar_parts(torch.tensor([2.0]), torch.tensor([math.pi / 2])).round(decimals=4).tolist()
    [-0.0, 2.0, 2.0]
    """
    return _PolarParts.apply(magnitude, phase)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ComplexLayer(nn.Module):
    """One complex layer around a bias-free real layer ``f`` (see the module docstring).

    Subclasses build ``f``; :class:`ComplexLinear`, :class:`ComplexConv2d` and
    :class:`ComplexConvTranspose2d` are the ones to use.

    Parameters
    ----------
    layer : nn.Module
        The real map ``f`` (linear, without bias).
    n_out : int
        Output features (linear) or channels (convolutions).
    fan_in : int
        Sets the magnitude-bias initialisation ``U(−1/√fan_in, 1/√fan_in)`` (the phase
        bias starts at 0).
    norm : {"batch", "layer", None}
        Normalisation of the magnitudes before the ReLU. For convolutions ``"layer"``
        is ``GroupNorm(1, C)`` (per sample over channels and positions).
    spatial : bool
        Whether activations are ``[B, C, H, W]`` maps (convolutions) or ``[..., F]``.
    activation : bool, default True
        Apply ``ReLU(Norm(m))``; ``False`` returns the raw magnitude ``m`` (and phase).
    """

    def __init__(
        self,
        layer: nn.Module,
        n_out: int,
        fan_in: int,
        *,
        norm: str | None,
        spatial: bool,
        activation: bool = True,
    ) -> None:
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {list(_NORMS)}, got {norm!r}")
        self.f = layer
        self.n_out, self.norm_kind, self.spatial = n_out, norm, spatial
        self.activation = bool(activation)
        shape = (1, n_out, 1, 1) if spatial else (n_out,)
        self.magnitude_bias = nn.Parameter(torch.empty(shape))
        self.phase_bias = nn.Parameter(torch.zeros(shape))
        self._fan_in = int(fan_in)
        if norm is None:
            self.norm: nn.Module = nn.Identity()
        elif norm == "batch":
            self.norm = nn.BatchNorm2d(n_out) if spatial else nn.BatchNorm1d(n_out)
        else:
            self.norm = nn.GroupNorm(1, n_out) if spatial else nn.LayerNorm(n_out)
        self.reset_bias()

    def reset_bias(self) -> None:
        """Magnitude bias ``U(−1/√fan_in, 1/√fan_in)``, phase bias 0 (uses torch's global RNG)."""
        bound = 1.0 / math.sqrt(self._fan_in)
        with torch.no_grad():
            self.magnitude_bias.uniform_(-bound, bound)
            self.phase_bias.zero_()

    def _apply_norm(self, m: torch.Tensor) -> torch.Tensor:
        if self.norm_kind == "batch" and not self.spatial and m.dim() != 2:
            shape = m.shape  # BatchNorm1d over every leading dim
            return self.norm(m.reshape(-1, shape[-1])).reshape(shape)
        return self.norm(m)

    def pre_activation(self, magnitude: torch.Tensor, phase: torch.Tensor) -> Polar:
        """``(m, φ)`` before the norm and ReLU: ``½(|ψ| + b_m) + ½(χ + b_m)`` and ``arg ψ + b_φ``."""
        psi_re, psi_im, chi = self.f(polar_parts(magnitude, phase)).split(magnitude.shape[0])
        return combine(psi_re, psi_im, chi, self.magnitude_bias, self.phase_bias)

    def psi(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """The synchrony term ``ψ = f(Re z) + i·f(Im z)`` as a complex tensor (for inspection)."""
        re = self.f(magnitude * torch.cos(phase))
        im = self.f(magnitude * torch.sin(phase))
        return torch.complex(re, im)

    def forward(self, magnitude: torch.Tensor, phase: torch.Tensor) -> Polar:
        """``(ReLU(Norm(m)), φ)`` of the input ``(magnitude, phase)``."""
        m, phi = self.pre_activation(magnitude, phase)
        if self.activation:
            m = torch.relu(self._apply_norm(m))
        return m, phi

    def extra_repr(self) -> str:
        return f"norm={self.norm_kind}, activation={'relu' if self.activation else 'none'}"


class ComplexLinear(ComplexLayer):
    """Complex layer around ``nn.Linear(in_features, out_features, bias=False)``.

    Acts on the last dimension of ``[..., in_features]`` activations.

    Parameters
    ----------
    in_features, out_features : int
    norm : {"layer", "batch", None}, default "layer"
        Norm on the magnitudes (Löwe et al. use LayerNorm after linear layers).
    activation : bool, default True

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._complex import ComplexLinear, real_to_polar
    >>> _ = torch.manual_seed(0)
    >>> layer = ComplexLinear(4, 3)
    >>> m, phi = layer(*real_to_polar(torch.rand(2, 4)))
    >>> tuple(m.shape), bool((m >= 0).all())
    ((2, 3), True)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        norm: str | None = "layer",
        activation: bool = True,
    ) -> None:
        in_features = _check_positive_int("in_features", in_features)
        out_features = _check_positive_int("out_features", out_features)
        super().__init__(
            nn.Linear(in_features, out_features, bias=False),
            out_features,
            in_features,
            norm=norm,
            spatial=False,
            activation=activation,
        )


class ComplexConv2d(ComplexLayer):
    """Complex layer around ``nn.Conv2d(..., bias=False)`` on ``[B, C, H, W]`` maps.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int
        As for ``nn.Conv2d`` (default 3, 1, 1: same size).
    norm : {"batch", "layer", None}, default "batch"
    activation : bool, default True

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._complex import ComplexConv2d, real_to_polar
    >>> layer = ComplexConv2d(1, 8, stride=2)
    >>> m, phi = layer(*real_to_polar(torch.rand(2, 1, 32, 32)))
    >>> tuple(m.shape)
    (2, 8, 16, 16)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        *,
        norm: str | None = "batch",
        activation: bool = True,
    ) -> None:
        in_channels = _check_positive_int("in_channels", in_channels)
        out_channels = _check_positive_int("out_channels", out_channels)
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        k = conv.kernel_size
        super().__init__(
            conv,
            out_channels,
            in_channels * k[0] * k[1],
            norm=norm,
            spatial=True,
            activation=activation,
        )


class ComplexConvTranspose2d(ComplexLayer):
    """Complex layer around ``nn.ConvTranspose2d(..., bias=False)``.

    The defaults (kernel 3, stride 2, padding 1, output padding 1) double the size.
    The magnitude bias is initialised with ``fan_in = out_channels · k²`` (as Löwe et al.).

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._complex import ComplexConvTranspose2d, real_to_polar
    >>> layer = ComplexConvTranspose2d(8, 4)
    >>> m, phi = layer(*real_to_polar(torch.rand(2, 8, 4, 4)))
    >>> tuple(phi.shape)
    (2, 4, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        output_padding: int = 1,
        *,
        norm: str | None = "batch",
        activation: bool = True,
    ) -> None:
        in_channels = _check_positive_int("in_channels", in_channels)
        out_channels = _check_positive_int("out_channels", out_channels)
        conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, bias=False
        )
        k = conv.kernel_size
        super().__init__(
            conv,
            out_channels,
            out_channels * k[0] * k[1],
            norm=norm,
            spatial=True,
            activation=activation,
        )
