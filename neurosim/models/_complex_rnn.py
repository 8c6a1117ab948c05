"""Complex-valued recurrent network: the CAE's magnitude/phase update applied to a recurrent map.

Standalone model (not a :class:`~neurosim.models.ModularRNN` module: ModularRNN's step is
the fixed real Euler update of one matrix, which a complex module cannot share). It obeys
the model contract; its state is real, ``[B, 2N]``: the N magnitudes, then the N phases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ._base import RecurrentModel
from ._complex import combine, polar_parts, real_to_polar, safe_magnitude, stable_angle
from ._rate import RateRNN

_NORMS = ("layer", None)
_READOUTS = ("magnitude", "cartesian")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


class ComplexRNN(RecurrentModel):
    """Recurrent network of complex units ``h = m·e^{iφ}`` (Löwe et al.'s update, recurrent).

    With ``f(h, x) = W h + W_in x`` (bias-free, acting on real and imaginary parts alike)
    one step computes::

        ψ = f(Re h, Re x) + i·f(Im h, Im x),   χ = f(|h|, |x|)
        m = ½(|ψ| + b_m) + ½(χ + b_m),         φ = arg ψ + b_φ
        h ← (1 − α)·h + α·ReLU(Norm(m))·e^{iφ}      (α = dt/τ; in the complex plane)

    Real inputs enter with zero phase; with ``complex_inputs=True`` the input vector holds
    magnitudes then phases (``[B, 2·n_inputs]``), e.g. phase-tagged features. States are
    real: ``[B, 2N]`` = N magnitudes, then N phases (in (−π, π]), and :meth:`unit_coords`
    labels them ``kind = "magnitude"`` / ``"phase"`` with a shared ``index_in_module``. The
    readout is ``W_out m + b_out`` (``readout="magnitude"``) or reads
    ``(m cos φ, m sin φ)`` (``"cartesian"``).

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
        Input size (real inputs; half the input width with ``complex_inputs``), complex
        units and outputs.
    tau, dt : float, default 100 and 20 ms
        ``α = dt/τ``; ``tau == dt`` gives the plain (non-leaky) CAE update.
    norm : {"layer", None}, default "layer"
        LayerNorm on the magnitudes before the ReLU.
    complex_inputs : bool, default False
    readout : {"magnitude", "cartesian"}, default "magnitude"
    sigma_rec : float, default 0.0
        Noise added to the real and imaginary parts of each new state (``√(2α)·σ·ξ``).
    gain : float, default 1.0
        Recurrent weights start orthogonal × ``gain``.
    name : str, default "complex"
        The ``module`` coordinate of every unit.
    learn_h0 : bool, default False
    seed : int, optional
        Seeds the initial weights (torch's global RNG draws one when omitted).

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._complex_rnn import ComplexRNN
    >>> net = ComplexRNN(3, 8, 2, seed=0)
    >>> y, h = net(torch.rand(4, 10, 3))
    >>> tuple(y.shape), tuple(h.shape)
    ((4, 10, 2), (4, 10, 16))
    >>> sorted(set(net.unit_coords()["kind"]))
    ['magnitude', 'phase']
    """

    recurrent_weights = "w_rec"

    def __init__(
        self,
        n_inputs: int,
        n_hidden: int,
        n_outputs: int,
        *,
        tau: float = 100.0,
        dt: float = 20.0,
        norm: str | None = "layer",
        complex_inputs: bool = False,
        readout: str = "magnitude",
        sigma_rec: float = 0.0,
        gain: float = 1.0,
        name: str = "complex",
        learn_h0: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.n_in = _positive_int("n_inputs", n_inputs)
        self.n_hidden = _positive_int("n_hidden", n_hidden)
        self.n_outputs = _positive_int("n_outputs", n_outputs)
        self.complex_inputs = bool(complex_inputs)
        self.n_inputs = self.n_in * (2 if self.complex_inputs else 1)
        self.n_units = 2 * self.n_hidden
        self.tau, self.dt = _positive_float("tau", tau), _positive_float("dt", dt)
        if self.dt > self.tau:
            raise ValueError(f"dt ({dt} ms) must not exceed tau ({tau} ms)")
        self.alpha = self.dt / self.tau
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {list(_NORMS)}, got {norm!r}")
        if readout not in _READOUTS:
            raise ValueError(f"readout must be one of {list(_READOUTS)}, got {readout!r}")
        if isinstance(sigma_rec, bool) or not isinstance(sigma_rec, int | float) or sigma_rec < 0:
            raise ValueError(f"sigma_rec must be a number >= 0, got {sigma_rec!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.norm_kind, self.readout_kind = norm, readout
        self.sigma_rec, self.gain = float(sigma_rec), _positive_float("gain", gain)
        self.name, self.learn_h0 = name, bool(learn_h0)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        self.seed = int(seed)

        n = self.n_hidden
        self.w_in = nn.Parameter(torch.empty(n, self.n_in))
        self.w_rec = nn.Parameter(torch.empty(n, n))
        self.magnitude_bias = nn.Parameter(torch.empty(n))
        self.phase_bias = nn.Parameter(torch.zeros(n))
        self.norm = nn.LayerNorm(n) if norm == "layer" else nn.Identity()
        n_read = n * (2 if readout == "cartesian" else 1)
        self.w_out = nn.Parameter(torch.empty(self.n_outputs, n_read))
        self.b_out = nn.Parameter(torch.zeros(self.n_outputs))
        self.h0 = nn.Parameter(torch.zeros(2 * n), requires_grad=self.learn_h0)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the weights from ``seed`` (same seed, same weights)."""
        g = torch.Generator().manual_seed(self.seed)
        n = self.n_hidden
        with torch.no_grad():
            w = torch.empty(n, n)
            nn.init.orthogonal_(w, gain=self.gain, generator=g)
            self.w_rec.copy_(w)
            self.w_in.copy_(torch.randn(n, self.n_in, generator=g) / math.sqrt(self.n_in))
            bound = 1.0 / math.sqrt(n + self.n_in)
            self.magnitude_bias.copy_(torch.rand(n, generator=g) * 2 * bound - bound)
            self.phase_bias.zero_()
            w_out = torch.randn(self.w_out.shape, generator=g) / math.sqrt(self.w_out.shape[1])
            self.w_out.copy_(w_out)
            self.b_out.zero_()
            self.h0.zero_()
        if isinstance(self.norm, nn.LayerNorm):
            self.norm.reset_parameters()

    # -- states ---------------------------------------------------------------------------
    def split(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(magnitude, phase)`` ``[..., N]`` each from states ``[..., 2N]``."""
        return states[..., : self.n_hidden], states[..., self.n_hidden :]

    def initial_state(self, batch: int) -> torch.Tensor:
        """The (optionally learned) initial state ``[batch, 2N]`` (zeros by default)."""
        return self.h0.expand(batch, -1)

    # -- dynamics -------------------------------------------------------------------------
    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``W_in`` applied to the real part, imaginary part and magnitude of the inputs,
        ``[..., 3N]``, for all steps at once."""
        if self.complex_inputs:
            m, phi = inputs[..., : self.n_in], inputs[..., self.n_in :]
        else:
            m, phi = real_to_polar(inputs)
        parts = torch.cat((m * torch.cos(phi), m * torch.sin(phi), m), dim=-1)
        shape = parts.shape[:-1]
        drive = parts.reshape(*shape, 3, self.n_in) @ self.w_in.t()
        return drive.reshape(*shape, 3 * self.n_hidden)

    def step_driven(
        self, state: torch.Tensor, drive: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One step given the input drive of that step (see :meth:`input_drive`)."""
        m, phi = self.split(state)
        b = m.shape[0]
        parts = polar_parts(m, phi)  # [3B, N]: Re h, Im h, |h|
        re, im = parts[:b], parts[b : 2 * b]
        rec = parts @ self.w_rec.t()
        drive = drive.reshape(b, 3, self.n_hidden).transpose(0, 1).reshape(rec.shape)
        psi_re, psi_im, chi = (rec + drive).split(b, dim=0)
        target_m, target_phi = combine(psi_re, psi_im, chi, self.magnitude_bias, self.phase_bias)
        target_m = torch.relu(self.norm(target_m))
        a = self.alpha
        new_re = (1 - a) * re + a * target_m * torch.cos(target_phi)
        new_im = (1 - a) * im + a * target_m * torch.sin(target_phi)
        if noise is not None:
            new_re = new_re + noise[..., : self.n_hidden]
            new_im = new_im + noise[..., self.n_hidden :]
        return torch.cat((safe_magnitude(new_re, new_im), stable_angle(new_re, new_im)), dim=-1)

    def step(
        self, state: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One step under input ``x`` ``[B, I]``; ``noise`` ``[B, 2N]`` (real, imaginary parts)."""
        return self.step_driven(state, self.input_drive(x), noise)

    # the same recurrent noise as RateRNN (√(2α)·σ_rec·ξ over [B, T, 2N]; None when σ_rec = 0)
    sample_noise = RateRNN.sample_noise

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """``W_out m + b_out`` (or of ``(m cos φ, m sin φ)`` with ``readout="cartesian"``)."""
        m, phi = self.split(state)
        if self.readout_kind == "cartesian":
            m = torch.cat((m * torch.cos(phi), m * torch.sin(phi)), dim=-1)
        return torch.matmul(m, self.w_out.t()) + self.b_out

    # -- synchrony ------------------------------------------------------------------------
    def synchrony(
        self,
        states: torch.Tensor | np.ndarray,
        labels: np.ndarray,
        measure: Callable[..., Any] | None = None,
    ) -> Any:
        """Phase synchrony of the units within vs between the groups in ``labels``.

        Parameters
        ----------
        states : tensor or array
            ``[..., 2N]`` states (e.g. one time step ``[B, 2N]``).
        labels : array of int
            ``[N]`` or ``[..., N]`` (broadcast against the states' leading dims): the object
            each unit codes for (``0`` for none/background, ``< 0`` to ignore).
        measure : callable, optional
            ``measure(phase, magnitude, labels)`` on numpy arrays ``[..., N]``, e.g.
            ``analyses.phase_synchrony``; :func:`phase_locking` when omitted.

        Examples
        --------
        >>> import numpy as np, torch
        >>> net = ComplexRNN(1, 4, 1, seed=0)
        >>> state = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.3, 0.3, 2.5, 2.5]])
        >>> r = net.synchrony(state, np.array([1, 1, 2, 2]))
        >>> round(r["within"], 3), r["between"] < 0.5
        (1.0, True)
        """
        s = states.detach().cpu().numpy() if torch.is_tensor(states) else np.asarray(states)
        m, phi = s[..., : self.n_hidden], s[..., self.n_hidden :]
        lab = np.broadcast_to(np.asarray(labels), m.shape)
        return (measure or phase_locking)(phi, m, lab)

    # -- description ----------------------------------------------------------------------
    def unit_coords(self) -> dict[str, np.ndarray]:
        """``module`` (``name``), ``kind`` (``"magnitude"`` then ``"phase"``), ``index_in_module``."""
        n = self.n_hidden
        return {
            "module": np.full(2 * n, self.name, dtype=object),
            "kind": np.array(["magnitude"] * n + ["phase"] * n, dtype=object),
            "index_in_module": np.concatenate([np.arange(n), np.arange(n)]),
        }

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments, with ``class`` naming the model."""
        return {
            "class": "ComplexRNN",
            "n_inputs": self.n_in,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "tau": self.tau,
            "dt": self.dt,
            "norm": self.norm_kind,
            "complex_inputs": self.complex_inputs,
            "readout": self.readout_kind,
            "sigma_rec": self.sigma_rec,
            "gain": self.gain,
            "name": self.name,
            "learn_h0": self.learn_h0,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        kind = "complex" if self.complex_inputs else "real"
        return (
            f"{self.n_inputs} ({kind}) → {self.n_hidden} complex → {self.n_outputs}, "
            f"τ={self.tau} ms, dt={self.dt} ms, norm={self.norm_kind}, readout={self.readout_kind}"
        )


def phase_locking(
    phase: np.ndarray, magnitude: np.ndarray | None, labels: np.ndarray
) -> dict[str, float]:
    """Within- and between-group phase locking (magnitude-weighted order parameters).

    For each sample (all leading dims) and group ``k > 0`` of ``labels``, the within-group
    locking is ``R_k = |Σ m e^{iφ}| / Σ m`` over its units (1: one common phase); the
    between-group locking is ``|mean_k e^{iΦ_k}|`` of the groups' mean phases
    ``Φ_k = arg Σ m e^{iφ}``: near 1 when the groups share a phase, low when their phases are
    spread (the definitions of ``analyses.phase_synchrony``, which also reports per-object
    values). Units labelled ``≤ 0`` are ignored. Returns the means over samples (``within``,
    ``between``) and ``contrast = within − between``.

    Examples
    --------
    >>> import numpy as np
    >>> r = phase_locking(np.array([0.0, 0.1, np.pi, np.pi + 0.1]), None, np.array([1, 1, 2, 2]))
    >>> round(r["within"], 3), round(r["between"], 3)
    (0.999, 0.0)
    """
    phase = np.asarray(phase, dtype=np.float64)
    mag = np.ones_like(phase) if magnitude is None else np.asarray(magnitude, dtype=np.float64)
    lab = np.broadcast_to(np.asarray(labels), phase.shape)
    n = phase.shape[-1]
    phase, mag, lab = phase.reshape(-1, n), mag.reshape(-1, n), lab.reshape(-1, n)
    z = mag * np.exp(1j * phase)
    within, between = [], []
    for zi, mi, li in zip(z, mag, lab, strict=True):
        groups = [k for k in np.unique(li) if k > 0]
        sums = [(zi[li == k].sum(), mi[li == k].sum()) for k in groups]
        sums = [(s, w) for s, w in sums if w > 0]
        if not sums:
            continue
        within.append(np.mean([abs(s) / w for s, w in sums]))
        if len(sums) > 1:
            units = [s / abs(s) for s, _ in sums if abs(s) > 0]
            if len(units) > 1:
                between.append(abs(np.mean(units)))
    w = float(np.mean(within)) if within else float("nan")
    b = float(np.mean(between)) if between else float("nan")
    return {"within": w, "between": b, "contrast": w - b}
