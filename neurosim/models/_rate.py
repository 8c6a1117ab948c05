"""Leaky rate RNN: Euler step of τ dh/dt = −h + W φ(h) + W_in x + b."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._activations import _ACTIVATIONS as _ACTIVATIONS  # the fixed table (moved)
from ._activations import Activation, resolve_activation
from ._base import RecurrentModel

_INITS = ("orthogonal", "normal", "identity")


def _check_positive(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class RateRNN(RecurrentModel):
    """Leaky firing-rate RNN.

    Continuous-time dynamics ``τ dh/dt = −h + W φ(h) + W_in x + b`` integrated
    with the Euler–Maruyama step (α = dt/τ)::

        h ← h + α(−h + W φ(h) + W_in x + b) + √(2α) σ_rec ξ,   ξ ~ N(0, I)

    and read out as ``y = W_out φ(h) + b_out`` (Yang et al. 2019 convention).

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
        Sizes of input, state and output.
    activation : str, dict, nn.Module or callable, default "relu"
        One of ``relu, tanh, softplus, sigmoid, retanh, identity``; ``"adaptive"`` or
        ``"adaptive_per_neuron"`` (a learned :class:`AdaptiveActivation`, its ``(n, s)``
        registered as ``phi.n_raw``/``phi.s_raw``); a dict such as
        ``{"name": "adaptive", "n": "geadah", "per_neuron": True}``; an
        ``AdaptiveActivation``; or any ``nn.Module``/callable.
        See :func:`neurosim.models.resolve_activation`.
    tau, dt : float
        Time constant and step in ms (default 100 and 20).
    sigma_rec : float, default 0.05
        Recurrent noise amplitude (drawn only when ``forward`` is asked for noise).
    w_rec_init : {"orthogonal", "normal", "identity"}, default "orthogonal"
        Recurrent initialisation, scaled by ``gain``.
    gain : float, default 0.5
    learn_h0 : bool, default False
        Learn the initial state.

    Examples
    --------
    >>> import torch
    >>> from neurosim.models import RateRNN
    >>> net = RateRNN(3, 32, 3, tau=100.0, dt=20.0)
    >>> y, h = net(torch.zeros(4, 10, 3))
    >>> tuple(y.shape), tuple(h.shape)
    ((4, 10, 3), (4, 10, 32))
    """

    recurrent_weights = "w_rec"  # what a "weights" perturbation targets by default

    def __init__(
        self,
        n_inputs: int,
        n_hidden: int,
        n_outputs: int,
        *,
        activation: str | Mapping[str, Any] | Activation = "relu",
        tau: float = 100.0,
        dt: float = 20.0,
        sigma_rec: float = 0.05,
        w_rec_init: str = "orthogonal",
        gain: float = 0.5,
        learn_h0: bool = False,
    ) -> None:
        super().__init__()
        for name, v in (("n_inputs", n_inputs), ("n_hidden", n_hidden), ("n_outputs", n_outputs)):
            if not (isinstance(v, int | np.integer) and v > 0):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.n_inputs, self.n_units, self.n_outputs = int(n_inputs), int(n_hidden), int(n_outputs)
        self.tau = _check_positive("tau", tau)
        self.dt = _check_positive("dt", dt)
        if self.dt > self.tau:
            raise ValueError(
                f"dt ({dt} ms) must not exceed tau ({tau} ms): the Euler step is unstable"
            )
        if not (isinstance(sigma_rec, int | float) and sigma_rec >= 0):
            raise ValueError(f"sigma_rec must be a number >= 0, got {sigma_rec!r}")
        self.sigma_rec = float(sigma_rec)
        self.alpha = self.dt / self.tau
        phi, self.activation_name, self._activation_config = resolve_activation(
            activation, self.n_units
        )
        if w_rec_init not in _INITS:
            raise ValueError(f"w_rec_init must be one of {_INITS}, got {w_rec_init!r}")
        self.w_rec_init, self.gain = w_rec_init, _check_positive("gain", gain)

        n = self.n_units
        self.w_in = nn.Parameter(torch.empty(n, self.n_inputs))
        self.w_rec = nn.Parameter(torch.empty(n, n))
        self.b = nn.Parameter(torch.zeros(n))
        self.w_out = nn.Parameter(torch.empty(self.n_outputs, n))
        self.b_out = nn.Parameter(torch.zeros(self.n_outputs))
        self.h0 = nn.Parameter(torch.zeros(n), requires_grad=learn_h0)
        self.learn_h0 = learn_h0
        self.phi = phi  # an nn.Module (adaptive) registers its parameters here, after the weights
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise weights (uses torch's global RNG: seed it with ``torch.manual_seed``).

        An adaptive activation keeps its ``(n, s)``; reset it with ``net.phi.reset_parameters()``.
        """
        n = self.n_units
        with torch.no_grad():
            nn.init.normal_(self.w_in, 0.0, 1.0 / math.sqrt(self.n_inputs))
            if self.w_rec_init == "orthogonal":
                nn.init.orthogonal_(self.w_rec, gain=self.gain)
            elif self.w_rec_init == "normal":
                nn.init.normal_(self.w_rec, 0.0, self.gain / math.sqrt(n))
            else:
                self.w_rec.copy_(self.gain * torch.eye(n))
            nn.init.normal_(self.w_out, 0.0, 1.0 / math.sqrt(n))
            self.b.zero_()
            self.b_out.zero_()
            self.h0.zero_()

    def initial_state(self, batch: int) -> torch.Tensor:
        """The (optionally learned) initial state repeated ``batch`` times."""
        return self.h0.expand(batch, -1)

    def step_driven(
        self, h: torch.Tensor, drive: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One Euler step given the input drive ``W_in x + b`` of that step."""
        rec = torch.addmm(drive, self.phi(h), self.w_rec.t())
        h_next = h + self.alpha * (rec - h)
        return h_next if noise is None else h_next + noise

    def step(
        self, state: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One Euler step; adds ``noise`` (already scaled, as from :meth:`sample_noise`) if given."""
        return self.step_driven(state, torch.addmm(self.b, x, self.w_in.t()), noise)

    def sample_noise(
        self, shape: tuple[int, ...], *, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Draw ``√(2α) σ_rec ξ`` for every step; ``None`` when ``sigma_rec == 0``."""
        if self.sigma_rec == 0:
            return None
        p = self.w_rec
        eps = torch.randn(shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
        return eps.mul_(math.sqrt(2.0 * self.alpha) * self.sigma_rec)

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``W_in x + b`` for every step in one matmul (``forward`` then loops over the rest)."""
        return torch.matmul(inputs, self.w_in.t()) + self.b

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """``W_out φ(h) + b_out``."""
        return torch.matmul(self.phi(state), self.w_out.t()) + self.b_out

    def unit_coords(self) -> dict[str, np.ndarray]:
        """All units belong to module ``"rnn"`` and are of kind ``"rate"``."""
        return {
            "module": np.full(self.n_units, "rnn", dtype=object),
            "kind": np.full(self.n_units, "rate", dtype=object),
        }

    def config(self) -> dict[str, Any]:
        """Constructor arguments.

        A fixed activation is recorded by name, an adaptive one as the full dict that
        rebuilds it (its initial ``(n, s)``; ``load_state_dict`` restores the trained
        ones), any other callable by its class name (not rebuildable).
        """
        return {
            "class": "RateRNN",
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_units,
            "n_outputs": self.n_outputs,
            "activation": copy.deepcopy(self._activation_config),
            "tau": self.tau,
            "dt": self.dt,
            "sigma_rec": self.sigma_rec,
            "w_rec_init": self.w_rec_init,
            "gain": self.gain,
            "learn_h0": self.learn_h0,
        }

    def extra_repr(self) -> str:
        return (
            f"{self.n_inputs} → {self.n_units} → {self.n_outputs}, φ={self.activation_name}, "
            f"τ={self.tau} ms, dt={self.dt} ms, σ_rec={self.sigma_rec}"
        )
