"""A current-based LIF population driven by a paradigm's inputs, and its analytic f–I curve."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._backend import BuiltNetwork, brian2
from ._sources import poisson_source

InputMode = Literal["current", "poisson"]
_MODES = ("current", "poisson")


def lif_rate(
    drive: float | np.ndarray,
    *,
    tau_m: float = 20.0,
    v_rest: float = 0.0,
    v_threshold: float = 20.0,
    v_reset: float = 10.0,
    t_ref: float = 2.0,
) -> np.ndarray:
    """Analytic firing rate (Hz) of a current-based LIF neuron under constant drive.

    ``r = 1 / (t_ref + τ ln((RI − V_r) / (RI − V_th)))`` above rheobase (``RI > V_th``,
    potentials measured from ``v_rest``), 0 at or below it.

    Parameters
    ----------
    drive : float or numpy.ndarray
        The steady-state depolarisation ``R·I`` in mV (``v`` relaxes to ``v_rest + drive``).
    tau_m, v_rest, v_threshold, v_reset, t_ref : float
        Membrane time constant (ms), resting, threshold and reset potentials (mV),
        refractory period (ms).

    Returns
    -------
    numpy.ndarray
        Rates in Hz, the shape of ``drive``.

    Examples
    --------
    >>> lif_rate([10.0, 30.0]).round(2).tolist()
    [0.0, 63.04]
    """
    ri = np.asarray(drive, dtype=np.float64)
    vr, vt = v_reset - v_rest, v_threshold - v_rest
    above = ri > vt
    safe = np.where(above, ri, vt + 1.0)
    isi = t_ref + tau_m * np.log((safe - vr) / (safe - vt))
    return np.where(above, 1000.0 / isi, 0.0)


def _matrix(name: str, value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(shape, float(arr))
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"LIFPopulation.{name} must be finite with shape {shape}; got {arr.shape}")
    return arr


@dataclass(frozen=True)
class LIFPopulation:
    """A population of current-based leaky integrate-and-fire neurons.

    ``τ_m dv/dt = v_rest − v + drive(t)`` (mV), spike when ``v > v_threshold``, then
    ``v ← v_reset`` and clamped for ``t_ref``. Potentials start at ``v_rest``.

    Parameters
    ----------
    n_units : int
    w_in : array-like ``[n_units, n_inputs]`` or float
        ``input_mode="current"``: mV of steady depolarisation per unit of paradigm input;
        ``input_mode="poisson"``: mV jump of ``v`` per spike of each Poisson source of
        that input channel.
    bias : float or array-like ``[n_units]``, default 0
        Constant depolarisation (mV) added to the drive.
    w_rec : array-like ``[n_units, n_units]``, optional
        Recurrent jumps ``w_rec[post, pre]`` in mV per spike (0 = no synapse), with ``delay``.
    w_out : array-like ``[n_outputs, n_units]``, optional
        Linear readout of the binned rates (Hz) into the ``output`` variable (zeros if None).
    tau_m, v_rest, v_threshold, v_reset, t_ref, delay : float
        ms, mV, mV, mV, ms, ms.
    input_mode : {"current", "poisson"}
        ``current``: the inputs are currents (``drive = bias + w_in @ x(t)``, a
        ``TimedArray`` on the paradigm's ``dt``). ``poisson``: each input channel is
        ``n_poisson`` Poisson sources firing at ``rate_scale · x(t)`` Hz (clipped at 0).
    n_poisson : int, default 20
    rate_scale : float, default 100.0
        Hz per unit of paradigm input.
    modules : sequence of str, optional
        Population label of each unit (the ``module`` coordinate); ``"lif"`` by default.
    poisson_source : {"brian2", "numpy"}, default "brian2"
        How Poisson inputs are drawn: a ``PoissonGroup`` on a rate ``TimedArray``, or
        trains pre-drawn per trial (the same batched or one trial at a time).

    Examples
    --------
    >>> pop = LIFPopulation(3, w_in=25.0)
    >>> pop.config()["n_units"], pop.unit_coords()["module"]
    (3, ['lif', 'lif', 'lif'])
    """

    n_units: int
    w_in: Any = 0.0
    bias: Any = 0.0
    w_rec: Any = None
    w_out: Any = None
    tau_m: float = 20.0
    v_rest: float = 0.0
    v_threshold: float = 20.0
    v_reset: float = 10.0
    t_ref: float = 2.0
    delay: float = 0.0
    input_mode: InputMode = "current"
    n_poisson: int = 20
    rate_scale: float = 100.0
    modules: Sequence[str] | None = field(default=None)
    poisson_source: Literal["brian2", "numpy"] = "brian2"

    def __post_init__(self) -> None:
        if int(self.n_units) < 1:
            raise ValueError(f"LIFPopulation.n_units must be >= 1, got {self.n_units!r}")
        if self.poisson_source not in ("brian2", "numpy"):
            raise ValueError(
                "LIFPopulation.poisson_source must be one of ('brian2', 'numpy'), "
                f"got {self.poisson_source!r}"
            )
        if self.input_mode not in _MODES:
            raise ValueError(
                f"LIFPopulation.input_mode must be one of {_MODES}, got {self.input_mode!r}"
            )
        for name in ("tau_m", "n_poisson"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LIFPopulation.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("t_ref", "delay", "rate_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"LIFPopulation.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.v_reset < self.v_threshold:
            raise ValueError(
                f"LIFPopulation.v_reset must be < v_threshold ({self.v_threshold}), got {self.v_reset}"
            )
        if self.modules is not None and len(self.modules) != self.n_units:
            raise ValueError(
                f"LIFPopulation.modules must have n_units={self.n_units} labels, got {len(self.modules)}"
            )

    def unit_coords(self) -> dict[str, list[Any]]:
        """Per-unit labels: ``module`` (population) for the ``unit`` dim."""
        mods = list(self.modules) if self.modules is not None else ["lif"] * self.n_units
        return {"module": [str(m) for m in mods]}

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description (weights summarised by shape)."""
        out: dict[str, Any] = {"class": type(self).__name__}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if key in ("w_in", "bias", "w_rec", "w_out") and value is not None:
                arr = np.asarray(value)
                value = arr.tolist() if arr.size <= 16 else f"array{list(arr.shape)}"
            elif key == "modules" and value is not None:
                value = list(value)
            out[key] = value
        json.dumps(out)
        return out

    def build(
        self,
        inputs: np.ndarray,
        dt: float,
        gate: np.ndarray | None = None,
        trial_seeds: Sequence[int] | None = None,
    ) -> BuiltNetwork:
        """Brian2 objects for ``B`` independent copies, one per trial of ``inputs [B, T, I]``.

        Neuron ``b · n_units + k`` is unit ``k`` of trial ``b``. ``gate [T, B·n_units]``
        (1 = normal, 0 = silenced) removes the drive and blocks spikes on paradigm steps.
        """
        b2 = brian2()
        ms, mV = b2.ms, b2.mV
        n_trials, n_steps, n_in = inputs.shape
        n = int(self.n_units)
        total = n_trials * n
        w_in = _matrix("w_in", self.w_in, (n, n_in))
        bias = np.broadcast_to(np.asarray(self.bias, dtype=np.float64), (n,))
        if gate is None:
            gate = np.ones((n_steps, total))
        namespace: dict[str, Any] = {
            "gate": b2.TimedArray(np.asarray(gate, dtype=np.float64), dt=dt * ms),
            "tau_m": self.tau_m * ms,
            "v_rest": self.v_rest * mV,
            "v_th": self.v_threshold * mV,
            "v_reset": self.v_reset * mV,
        }
        if self.input_mode == "current":
            drive = bias + np.einsum("bti,ni->tbn", inputs.astype(np.float64), w_in)
            namespace["drive"] = b2.TimedArray(drive.reshape(n_steps, total) * mV, dt=dt * ms)
            eqs = (
                "dv/dt = (v_rest - v + gate(t, i) * drive(t, i)) / tau_m : volt (unless refractory)"
            )
        else:
            eqs = (
                "dv/dt = (v_rest - v + gate(t, i) * bias) / tau_m : volt (unless refractory)\n"
                "bias : volt (constant)"
            )
        group = b2.NeuronGroup(
            total,
            eqs,
            threshold="v > v_th and gate(t, i) > 0.5",
            reset="v = v_reset",
            refractory=self.t_ref * ms,
            method="exponential_euler",
            namespace=namespace,
        )
        group.v = self.v_rest * mV
        if self.input_mode == "poisson":
            group.bias = np.tile(bias, n_trials) * mV
        objects: list[Any] = [group]
        if self.input_mode == "poisson":
            per = int(self.n_poisson)
            rates = np.clip(inputs.astype(np.float64), 0.0, None) * self.rate_scale
            rates = np.repeat(rates, per, axis=2)  # source (c, p) of trial b: (b·I + c)·per + p
            src = poisson_source(rates, dt, self.poisson_source, trial_seeds)
            syn = b2.Synapses(src, group, "w : volt", on_pre="v_post += gate(t, j) * w",
                              namespace=namespace)  # fmt: skip
            pre, post, weight = [], [], []
            for c in range(n_in):
                targets = np.flatnonzero(w_in[:, c])
                for bt in range(n_trials):
                    sources = (bt * n_in + c) * per + np.arange(per)
                    pre.append(np.repeat(sources, targets.size))
                    post.append(np.tile(bt * n + targets, per))
                    weight.append(np.tile(w_in[targets, c], per))
            if pre and sum(map(len, pre)):
                syn.connect(i=np.concatenate(pre), j=np.concatenate(post))
                syn.w = np.concatenate(weight) * mV
            objects += [src, syn]
        w_rec = _matrix("w_rec", self.w_rec, (n, n))
        if w_rec is not None and np.any(w_rec):
            post_k, pre_k = np.nonzero(w_rec)
            offs = (np.arange(n_trials) * n)[:, None]
            syn = b2.Synapses(group, group, "w : volt", on_pre="v_post += w")
            syn.connect(i=(offs + pre_k).ravel(), j=(offs + post_k).ravel())
            syn.w = np.tile(w_rec[post_k, pre_k], n_trials) * mV
            syn.delay = self.delay * ms
            objects.append(syn)
        return BuiltNetwork(objects=objects, neurons=group, n_units=n)

    def readout(self, rates: np.ndarray, n_outputs: int) -> np.ndarray:
        """``output [B, T, O]`` from binned rates ``[B, T, N]`` (Hz) through ``w_out``."""
        w_out = _matrix("w_out", self.w_out, (n_outputs, self.n_units))
        if w_out is None:
            return np.zeros((*rates.shape[:2], n_outputs), dtype=np.float32)
        return np.einsum("btn,on->bto", rates, w_out).astype(np.float32)
