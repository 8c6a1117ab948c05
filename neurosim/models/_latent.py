"""Latent RNN with an observation model: an LFADS-like sequential model kept simple.

A bidirectional GRU encoder reads the held-in neurons of a trial and infers the initial
state ``h0`` of a generator :class:`~neurosim.models.RateRNN` (``n_latent`` units); the
generator runs forward (driven by the task inputs, if any) and a linear-exponential readout
maps its rates ``φ(h)`` to every neuron's expected count per bin (Poisson), or a linear one to
rates (Gaussian). The state of the model *is* the generator state, so ``step``, fixed points,
Lyapunov spectra and perturbations apply to the fitted dynamics unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ._activations import Activation
from ._base import RecurrentModel
from ._rate import RateRNN

LIKELIHOODS = ("poisson", "gaussian")
_MAX_LOG_RATE = 15.0  # exp(15) ≈ 3e6 counts per bin: a bound that only guards against overflow


def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < (0 if allow_zero else 1):
        accepted = "an integer >= 0" if allow_zero else "a positive integer"
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


class LatentRNN(RecurrentModel):
    """Generator RNN with an inferred initial state and a Poisson or Gaussian readout.

    - encoder: bidirectional GRU over ``log1p`` counts (Poisson) or the values themselves
      (Gaussian) of the ``held_in`` neurons (standardised by the buffers ``encoder_centre``
      and ``encoder_scale``, which a fit sets from its training trials), concatenated with the inputs when the model has
      any; its last forward and first backward hidden states give the posterior mean and
      log-variance of ``h0`` (:meth:`infer_initial_state`);
    - generator: a :class:`RateRNN` with ``n_latent`` units,
      ``h ← h + α(−h + W φ(h) + W_in x + b)``; ``step`` is its step;
    - readout: ``exp(C φ(h) + d)`` expected counts per bin (Poisson) or ``C φ(h) + d`` rates
      (Gaussian) of all ``n_neurons``; with ``n_factors`` the map goes through low-dimensional
      linear factors ``f = F φ(h)``, ``C f + d``.

    Parameters
    ----------
    n_neurons : int
        Recorded neurons (outputs of :meth:`readout`).
    n_latent : int
        Generator units (the state size).
    n_inputs : int, default 0
        Task inputs that drive the generator; 0 for an autonomous one, whose ``step`` takes
        ``x`` of shape ``[B, 0]`` (or ``None``).
    n_factors : int, optional
        Low-dimensional linear factors between generator and readout.
    activation : str or dict, default "tanh"
        The generator's ``φ`` (see :class:`RateRNN`).
    tau, dt : float
        The generator's time constant and step in ms (default 100 and 20).
    likelihood : {"poisson", "gaussian"}
        Observation model: counts (readout = expected counts per bin) or continuous activity.
    encoder_hidden : int, default 64
        Hidden units of each direction of the encoder GRU.
    held_in : sequence of int, optional
        Indices of the neurons the encoder reads (default: all).
    sigma_rec : float, default 0
        Recurrent noise of the generator.

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._latent import LatentRNN
    >>> _ = torch.manual_seed(0)
    >>> model = LatentRNN(30, 8, held_in=range(20))
    >>> counts = torch.poisson(torch.ones(4, 25, 30))
    >>> h0, logvar = model.infer_initial_state(counts)
    >>> rates, states = model(torch.zeros(4, 25, 0), state=h0)
    >>> tuple(rates.shape), tuple(states.shape), bool((rates > 0).all())
    ((4, 25, 30), (4, 25, 8), True)
    """

    recurrent_weights = "generator.w_rec"  # what a "weights" perturbation targets by default

    def __init__(
        self,
        n_neurons: int,
        n_latent: int,
        n_inputs: int = 0,
        *,
        n_factors: int | None = None,
        activation: str | Mapping[str, Any] | Activation = "tanh",
        tau: float = 100.0,
        dt: float = 20.0,
        likelihood: str = "poisson",
        encoder_hidden: int = 64,
        held_in: Sequence[int] | None = None,
        sigma_rec: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_outputs = _positive_int("n_neurons", n_neurons)
        self.n_units = _positive_int("n_latent", n_latent)
        self.n_inputs = _positive_int("n_inputs", n_inputs, allow_zero=True)
        if n_factors is not None:
            n_factors = _positive_int("n_factors", n_factors)
        self.n_factors = n_factors
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        self.encoder_hidden = _positive_int("encoder_hidden", encoder_hidden)
        if held_in is None:
            held = np.arange(self.n_outputs)
        else:
            held = np.asarray(list(held_in))
            if (
                held.ndim != 1
                or held.size == 0
                or held.dtype.kind not in "iu"
                or held.min() < 0
                or held.max() >= self.n_outputs
                or np.unique(held).size != held.size
            ):
                raise ValueError(
                    f"held_in must be distinct neuron indices in 0..{self.n_outputs - 1} "
                    f"(at least one), got {list(held_in)!r}"
                )
        self.held_in = [int(i) for i in held]
        self.register_buffer("_held_in", torch.as_tensor(held, dtype=torch.long), persistent=False)
        # the encoder standardises what it reads: (log1p(counts) − centre) / scale per neuron;
        # a fit sets these from its training trials (they are saved with the weights)
        self.register_buffer("encoder_centre", torch.zeros(len(self.held_in)))
        self.register_buffer("encoder_scale", torch.ones(len(self.held_in)))

        # the generator (a 1-input RateRNN with a frozen zero input column when autonomous)
        gen_out = n_factors if n_factors is not None else self.n_outputs
        self.generator = RateRNN(
            max(self.n_inputs, 1), self.n_units, gen_out, activation=activation,
            tau=tau, dt=dt, sigma_rec=sigma_rec,
        )  # fmt: skip
        self.dt, self.tau = self.generator.dt, self.generator.tau
        self.sigma_rec = self.generator.sigma_rec
        if self.n_inputs == 0:
            with torch.no_grad():
                self.generator.w_in.zero_()
            self.generator.w_in.requires_grad_(False)
        if n_factors is not None:  # factors are linear in φ(h): their offset lives in d
            with torch.no_grad():
                self.generator.b_out.zero_()
            self.generator.b_out.requires_grad_(False)
            self.observation: nn.Linear | None = nn.Linear(n_factors, self.n_outputs)
        else:
            self.observation = None
        n_enc_in = len(self.held_in) + self.n_inputs
        self.encoder = nn.GRU(n_enc_in, self.encoder_hidden, batch_first=True, bidirectional=True)
        self.posterior = nn.Linear(2 * self.encoder_hidden, 2 * self.n_units)
        with torch.no_grad():  # start near the prior N(0, I): small means, unit variances
            self.posterior.weight.mul_(0.1)
            self.posterior.bias.zero_()

    # --- the model contract (on the generator state) ---------------------------------------

    def initial_state(self, batch: int) -> torch.Tensor:
        """The generator's initial state (zeros); use :meth:`infer_initial_state` for data."""
        return self.generator.initial_state(batch)

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``W_in x + b`` for every step (just ``b`` when the generator is autonomous)."""
        if self.n_inputs == 0:
            return self.generator.b.expand(*inputs.shape[:-1], self.n_units)
        return self.generator.input_drive(inputs)

    def step_driven(
        self, state: torch.Tensor, drive: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The generator's Euler step given one step of :meth:`input_drive`."""
        return self.generator.step_driven(state, drive, noise)

    def step(
        self, state: torch.Tensor, x: torch.Tensor | None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One generator step; ``x`` is ``[B, n_inputs]`` (``[B, 0]`` or ``None`` when there
        are no inputs; ``None`` means zero input)."""
        if x is None or self.n_inputs == 0:
            drive = self.generator.b.expand(state.shape[0], self.n_units)
        else:
            drive = torch.addmm(self.generator.b, x, self.generator.w_in.t())
        return self.generator.step_driven(state, drive, noise)

    def sample_noise(
        self, shape: tuple[int, ...], *, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """The generator's recurrent noise (``None`` when ``sigma_rec == 0``)."""
        return self.generator.sample_noise(shape, generator=generator)

    def factors(self, state: torch.Tensor) -> torch.Tensor:
        """Latent factors ``[..., F]``: ``F φ(h)`` with ``n_factors``, else the rates ``φ(h)``."""
        if self.n_factors is None:
            return self.generator.phi(state)
        return self.generator.readout(state)

    def log_rates(self, state: torch.Tensor) -> torch.Tensor:
        """The linear part of the readout, ``C φ(h) + d`` (through the factors if any)."""
        z = self.generator.readout(state)
        return z if self.observation is None else self.observation(z)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """Expected counts per bin ``exp(C φ(h) + d)`` (Poisson) or rates ``C φ(h) + d``."""
        z = self.log_rates(state)
        if self.likelihood == "poisson":
            return torch.exp(z.clamp(max=_MAX_LOG_RATE))
        return z

    def readout_offset(self) -> nn.Parameter:
        """The per-neuron offset ``d`` of the readout (what a fit initialises from the data)."""
        return self.generator.b_out if self.observation is None else self.observation.bias

    def readout_weight(self) -> nn.Parameter:
        """The readout matrix ``C`` (``[n_neurons, n_latent or n_factors]``)."""
        return self.generator.w_out if self.observation is None else self.observation.weight

    # --- the encoder ----------------------------------------------------------------------

    def encoder_input(
        self, activity: torch.Tensor, inputs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """What the encoder reads: held-in activity (``log1p`` of counts), standardised by the
        ``encoder_centre`` and ``encoder_scale`` buffers, and the inputs.

        ``activity`` is ``[B, T, n_neurons]`` (the held-in columns are taken) or already
        ``[B, T, len(held_in)]``.
        """
        if not isinstance(activity, torch.Tensor) or activity.ndim != 3:
            got = tuple(activity.shape) if isinstance(activity, torch.Tensor) else activity
            raise ValueError(f"activity must be a tensor [B, T, N], got {got!r}")
        n = activity.shape[-1]
        if n == self.n_outputs:
            activity = activity.index_select(-1, self._held_in.to(activity.device))
        elif n != len(self.held_in):
            raise ValueError(
                f"activity has {n} neurons; expected {self.n_outputs} (all) or "
                f"{len(self.held_in)} (the held-in ones)"
            )
        if not torch.isfinite(activity).all():
            raise ValueError("activity holds NaN or inf")
        if self.likelihood == "poisson":
            if (activity < 0).any():
                raise ValueError("activity must be non-negative counts for a Poisson model")
            activity = torch.log1p(activity)
        p = self.posterior.weight
        x = activity.to(dtype=p.dtype, device=p.device)
        x = (x - self.encoder_centre) / self.encoder_scale
        if self.n_inputs:
            b, t = x.shape[:2]
            if inputs is None:
                inputs = x.new_zeros(b, t, self.n_inputs)
            if tuple(inputs.shape) != (b, t, self.n_inputs):
                raise ValueError(
                    f"inputs must be [B, T, {self.n_inputs}] = {[b, t, self.n_inputs]}, "
                    f"got {list(inputs.shape)}"
                )
            x = torch.cat([x, inputs.to(x)], dim=-1)
        return x

    def infer_initial_state(
        self,
        activity: torch.Tensor,
        inputs: torch.Tensor | None = None,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior over the initial state from a trial's held-in activity.

        Parameters
        ----------
        activity : torch.Tensor
            ``[B, T, n_neurons]`` or ``[B, T, len(held_in)]``; counts must be >= 0.
            Held-out neurons are never read.
        inputs : torch.Tensor, optional
            ``[B, T, n_inputs]`` (zeros when omitted and the model has inputs).
        sample : bool, default False
            Return a reparameterised draw ``mean + σ ε`` instead of the mean.
        generator : torch.Generator, optional
            Source of ``ε`` (CPU generator), for seeded draws.

        Returns
        -------
        h0, logvar : torch.Tensor
            ``[B, n_latent]`` each: the posterior mean (or a draw) and log-variance.
        """
        x = self.encoder_input(activity, inputs)
        _, last = self.encoder(x)  # [2, B, H]: forward direction's last, backward's first
        stats = self.posterior(torch.cat([last[0], last[1]], dim=-1))
        mean, logvar = stats.split(self.n_units, dim=-1)
        logvar = logvar.clamp(-10.0, 10.0)
        if not sample:
            return mean, logvar
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device="cpu")
        return mean + torch.exp(0.5 * logvar) * eps.to(mean.device), logvar

    # --- labels and configuration ---------------------------------------------------------

    def unit_coords(self) -> dict[str, np.ndarray]:
        """All state units belong to module ``"latent"`` and are of kind ``"rate"``."""
        return {
            "module": np.full(self.n_units, "latent", dtype=object),
            "kind": np.full(self.n_units, "rate", dtype=object),
        }

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), ``class`` = ``"LatentRNN"``."""
        return {
            "class": "LatentRNN",
            "n_neurons": self.n_outputs,
            "n_latent": self.n_units,
            "n_inputs": self.n_inputs,
            "n_factors": self.n_factors,
            "activation": copy.deepcopy(self.generator._activation_config),
            "tau": self.tau,
            "dt": self.dt,
            "likelihood": self.likelihood,
            "encoder_hidden": self.encoder_hidden,
            "held_in": list(self.held_in),
            "sigma_rec": float(self.sigma_rec),
        }

    def extra_repr(self) -> str:
        f = f" → {self.n_factors} factors" if self.n_factors is not None else ""
        return (
            f"{self.n_inputs} inputs → {self.n_units} latents{f} → {self.n_outputs} neurons "
            f"({self.likelihood}), encoder reads {len(self.held_in)} neurons"
        )


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, e^logvar) ‖ N(0, I))`` per row, summed over the last axis.

    Examples
    --------
    >>> float(kl_to_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3))[0])
    0.0
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
