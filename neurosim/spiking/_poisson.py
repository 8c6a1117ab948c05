"""A population of Poisson neurons whose rates follow a paradigm's inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import BuiltNetwork
from ._lif import _matrix
from ._sources import _SOURCES, PoissonSource, poisson_source


@dataclass(frozen=True)
class PoissonPopulation:
    """Poisson neurons firing at ``rate(t) = max(0, bias + w_in @ x(t))`` Hz.

    The rates are a ``TimedArray`` on the paradigm's ``dt``; on each integration step a
    neuron fires with probability ``rate · sim_dt`` (Brian2's ``PoissonGroup``).
    Silenced units (``gate = 0``) do not fire.

    Parameters
    ----------
    n_units : int
    w_in : array-like ``[n_units, n_inputs]`` or float, default 0
        Hz per unit of paradigm input.
    bias : float or array-like ``[n_units]``, default 0
        Baseline rate in Hz.
    w_out : array-like ``[n_outputs, n_units]``, optional
        Linear readout of the binned rates (Hz) into ``output``.
    modules : sequence of str, optional
        Population labels (``"poisson"`` by default).
    source : {"brian2", "numpy"}, default "brian2"
        ``brian2``: a ``PoissonGroup`` on a rate ``TimedArray``. ``numpy``: trains pre-drawn
        per trial from the run's per-trial seeds (:func:`poisson_trains`), so a trial's
        spikes are the same batched or one at a time.

    Examples
    --------
    >>> PoissonPopulation(2, bias=5.0).unit_coords()
    {'module': ['poisson', 'poisson']}
    """

    n_units: int
    w_in: Any = 0.0
    bias: Any = 0.0
    w_out: Any = None
    modules: Sequence[str] | None = None
    source: PoissonSource = "brian2"

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ValueError(
                f"PoissonPopulation.source must be one of {_SOURCES}, got {self.source!r}"
            )
        if int(self.n_units) < 1:
            raise ValueError(f"PoissonPopulation.n_units must be >= 1, got {self.n_units!r}")
        if self.modules is not None and len(self.modules) != self.n_units:
            raise ValueError(
                f"PoissonPopulation.modules must have n_units={self.n_units} labels, "
                f"got {len(self.modules)}"
            )

    def unit_coords(self) -> dict[str, list[Any]]:
        """Per-unit labels: ``module`` (population) for the ``unit`` dim."""
        mods = list(self.modules) if self.modules is not None else ["poisson"] * self.n_units
        return {"module": [str(m) for m in mods]}

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description."""
        out: dict[str, Any] = {"class": type(self).__name__, "n_units": int(self.n_units)}
        for key in ("w_in", "bias", "w_out"):
            arr = None if getattr(self, key) is None else np.asarray(getattr(self, key))
            out[key] = (
                None if arr is None else (arr.tolist() if arr.size <= 16 else list(arr.shape))
            )
        out["modules"] = None if self.modules is None else list(self.modules)
        out["source"] = self.source
        json.dumps(out)
        return out

    def rates(self, inputs: np.ndarray) -> np.ndarray:
        """Nominal rates ``[B, T, n_units]`` in Hz for ``inputs [B, T, I]``."""
        n = int(self.n_units)
        w_in = _matrix("w_in", self.w_in, (n, inputs.shape[-1]))
        bias = np.broadcast_to(np.asarray(self.bias, dtype=np.float64), (n,))
        return np.clip(bias + np.einsum("bti,ni->btn", inputs.astype(np.float64), w_in), 0, None)

    def build(
        self,
        inputs: np.ndarray,
        dt: float,
        gate: np.ndarray | None = None,
        trial_seeds: Sequence[int] | None = None,
    ) -> BuiltNetwork:
        """``B · n_units`` Poisson neurons (trial-major) driven by ``inputs [B, T, I]``."""
        rates = self.rates(inputs)
        if gate is not None:  # [T, B·N] -> [B, T, N]
            rates = rates * np.transpose(
                gate.reshape(rates.shape[1], rates.shape[0], -1), (1, 0, 2)
            )
        group = poisson_source(rates, dt, self.source, trial_seeds)
        return BuiltNetwork(objects=[group], neurons=group, n_units=int(self.n_units))

    def readout(self, rates: np.ndarray, n_outputs: int) -> np.ndarray:
        """``output [B, T, O]`` from binned rates ``[B, T, N]`` (Hz) through ``w_out``."""
        w_out = _matrix("w_out", self.w_out, (n_outputs, self.n_units))
        if w_out is None:
            return np.zeros((*rates.shape[:2], n_outputs), dtype=np.float32)
        return np.einsum("btn,on->bto", rates, w_out).astype(np.float32)
