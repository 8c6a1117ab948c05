"""Poisson spike sources at rates that follow a paradigm's inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._backend import brian2

PoissonSource = Literal["brian2", "numpy"]
_SOURCES = ("brian2", "numpy")


def poisson_trains(
    rates: np.ndarray, dt: float, sim_dt: float, trial_seeds: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw Poisson spike trains per trial: on each ``sim_dt`` step, spike w.p. ``rate·sim_dt``.

    Parameters
    ----------
    rates : numpy.ndarray
        ``[B, T, C]`` in Hz, constant over each paradigm step of ``dt`` ms.
    dt, sim_dt : float
        Paradigm and integration steps (ms); ``dt`` a whole multiple of ``sim_dt``.
    trial_seeds : sequence of int
        Trial ``b`` is drawn from ``numpy.random.default_rng(trial_seeds[b])`` alone.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Source index ``b·C + c`` and integration step of every spike.

    Examples
    --------
    >>> i, k = poisson_trains(np.full((2, 3, 4), 100.0), 10.0, 0.1, [0, 1])
    >>> bool(i.max() < 8 and k.max() < 300), abs(i.size - 2400 * 0.01) < 25
    (True, True)
    """
    n_b, _, n_c = rates.shape
    per_bin = int(round(dt / sim_dt))
    idx, steps = [], []
    for b in range(n_b):
        p = np.repeat(rates[b] * (sim_dt * 1e-3), per_bin, axis=0)
        step, c = np.nonzero(np.random.default_rng(int(trial_seeds[b])).random(p.shape) < p)
        idx.append(b * n_c + c)
        steps.append(step)
    return np.concatenate(idx).astype(np.int64), np.concatenate(steps).astype(np.int64)


def poisson_source(
    rates: np.ndarray, dt: float, source: str, trial_seeds: Sequence[int] | None
) -> Any:
    """A Brian2 group of ``B·C`` Poisson sources at ``rates [B, T, C]`` Hz (trial-major).

    ``source="brian2"``: a ``PoissonGroup`` reading a ``TimedArray`` (Brian2's random
    stream); ``"numpy"``: a ``SpikeGeneratorGroup`` of :func:`poisson_trains` (per-trial seeds).
    """
    b2 = brian2()
    n_b, n_t, n_c = rates.shape
    if source == "brian2":
        flat = np.transpose(rates, (1, 0, 2)).reshape(n_t, n_b * n_c)
        ns = {"rate_in": b2.TimedArray(flat * b2.Hz, dt=dt * b2.ms)}
        return b2.PoissonGroup(n_b * n_c, rates="rate_in(t, i)", namespace=ns)
    if trial_seeds is None:
        trial_seeds = list(range(n_b))
    sim_dt = float(b2.defaultclock.dt / b2.ms)
    idx, step = poisson_trains(rates, dt, sim_dt, trial_seeds)
    return b2.SpikeGeneratorGroup(n_b * n_c, idx, step * sim_dt * b2.ms)
