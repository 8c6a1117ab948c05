"""Ground-truth recordings: a teacher network's units observed as noisy rates or spike counts."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pandas as pd
import torch
import xarray as xr

from paradigms import Paradigm

from .._recordings import make_recording
from .._simulate import simulate
from .._train import seeded_rng
from ..models import RecurrentModel


def _rates_of(model: RecurrentModel, state: np.ndarray) -> np.ndarray:
    """The model's firing rates ``φ(h)`` (its ``phi``), or the state itself when it has none."""
    phi = getattr(model, "phi", None)
    if phi is None:
        return state.astype(np.float64)
    with torch.no_grad():
        p = next(model.parameters())
        out = phi(torch.as_tensor(state, dtype=p.dtype, device=p.device))
    return out.cpu().numpy().astype(np.float64)


def trial_table(ds: xr.Dataset) -> pd.DataFrame:
    """The trial coordinates of a dataset (every coordinate on ``trial`` alone) as a table.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"trial": [0, 1], "coh": ("trial", [0.1, 0.5])})
    >>> trial_table(ds).columns.tolist()
    ['coh']
    """
    cols = {
        str(k): ds[k].values for k in ds.coords if ds[k].dims == ("trial",) and str(k) != "trial"
    }
    return pd.DataFrame(cols)


def teacher_recording(
    model: RecurrentModel,
    paradigm: Paradigm,
    n_trials: int,
    seed: int = 0,
    *,
    kind: Literal["rates", "counts"] = "rates",
    noise_sd: float = 0.05,
    max_rate_hz: float = 40.0,
    min_rate_hz: float = 2.0,
    recurrent_noise: bool = True,
    quiet: bool = True,
) -> xr.Dataset:
    """Record a teacher network on a paradigm: every unit becomes one "neuron".

    The teacher runs ``n_trials`` trials (:func:`neurosim.simulate`, seeded, with its
    recurrent noise unless ``recurrent_noise=False``). Its rates ``r = φ(h)`` are then
    observed either as ``kind="rates"``: ``r + ε`` with Gaussian ``ε`` of SD ``noise_sd``, or as
    ``kind="counts"``: Poisson counts per bin with intensity mapped linearly from each unit's
    range of ``r`` onto ``[min_rate_hz, max_rate_hz]``. Trials are cut to the shortest valid
    length, so a ragged paradigm gives a rectangular recording (the cut is reported in
    ``attrs["excluded"]``).

    Parameters
    ----------
    model : RecurrentModel
        The teacher (a trained :class:`~neurosim.models.RateRNN`, say).
    paradigm : Paradigm
        An open-loop paradigm whose inputs drive the teacher; they are kept as ``input``.
    n_trials, seed : int
        Trials and the seed of trials, recurrent noise and observation noise.
    kind : {"rates", "counts"}
    noise_sd : float
        Observation noise of ``kind="rates"``.
    max_rate_hz, min_rate_hz : float
        Firing-rate range of ``kind="counts"``.
    recurrent_noise : bool, default True
    quiet : bool, default True

    Returns
    -------
    xarray.Dataset
        A recording (see :func:`neurosim.load_recording`) with ``input``, the teacher's
        outputs as ``behaviour``, the noiseless observation as ``truth`` (rates, or expected
        counts per bin) and the trial table; ``attrs["teacher"]`` holds the teacher's config.

    Examples
    --------
    >>> import paradigms, neurosim
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> teacher = neurosim.models.RateRNN(task.n_inputs, 8, task.n_outputs, dt=task.dt,
    ...                                   activation="tanh")
    >>> rec = teacher_recording(teacher, task, n_trials=3, seed=0, kind="counts")
    >>> rec.activity.dims, rec.attrs["kind"], rec.sizes["unit"]
    (('trial', 'time', 'unit'), 'counts', 8)
    """
    if kind not in ("rates", "counts"):
        raise ValueError(f"kind must be 'rates' or 'counts'; got {kind!r}")
    if not noise_sd >= 0:
        raise ValueError(f"noise_sd must be >= 0; got {noise_sd!r}")
    if not 0 <= min_rate_hz < max_rate_hz:
        raise ValueError(
            f"need 0 <= min_rate_hz < max_rate_hz; got min_rate_hz={min_rate_hz!r}, "
            f"max_rate_hz={max_rate_hz!r}"
        )
    ds = simulate(model, paradigm, n_trials, seed, noise=recurrent_noise, quiet=quiet)
    n_valid = ds["valid"].values.sum(axis=1)
    t = int(n_valid.min())
    excluded = []
    if t < ds.sizes["time"]:
        excluded.append(
            {"what": f"time bins {t}..{ds.sizes['time'] - 1} of the longer trials",
             "why": "trials are cut to the shortest trial's length"}
        )  # fmt: skip
    ds = ds.isel(time=slice(0, t))
    rates = _rates_of(model, ds["state"].values)
    rng = seeded_rng(seed, 71)
    if kind == "rates":
        truth = rates.astype(np.float32)
        activity = (rates + rng.normal(0.0, noise_sd, rates.shape)).astype(np.float32)
    else:
        lo, hi = rates.min(axis=(0, 1)), rates.max(axis=(0, 1))
        span = np.where(hi > lo, hi - lo, 1.0)
        hz = min_rate_hz + (max_rate_hz - min_rate_hz) * (rates - lo) / span
        truth = (hz * ds.attrs["dt"] / 1000.0).astype(np.float32)
        activity = rng.poisson(truth).astype(np.int64)
    rec = make_recording(
        activity,
        dt=float(ds.attrs["dt"]),
        kind=kind,
        trials=trial_table(ds),
        inputs=ds["input"].values,
        behaviour=ds["output"].values,
        unit_coords={"module": ds["module"].values} if "module" in ds.coords else None,
        attrs={
            "source": "teacher",
            "teacher": json.loads(ds.attrs["model"]),
            "paradigm": ds.attrs["paradigm"],
            "seed": int(seed),
            "noise_sd": float(noise_sd) if kind == "rates" else 0.0,
        },
        excluded=excluded,
    )
    rec["truth"] = (("trial", "time", "unit"), truth)
    return rec


def shuffled_recording(
    recording: xr.Dataset, seed: int = 0, *, mode: Literal["all", "time", "trials"] = "all"
) -> xr.Dataset:
    """A control recording with the structure a model should exploit destroyed.

    ``mode="all"``: each unit's values are permuted over all trials and bins together
    (only each unit's distribution of values is kept): a fitted model should explain
    nothing of held-out trials (pVar ≈ 0 or below). ``mode="time"``: each unit's bins are permuted within every trial independently (each
    unit's distribution of values is kept; temporal and cross-unit structure is lost, trial-level
    offsets are kept).
    ``mode="trials"``: each unit's trials are permuted independently (its time course and
    PSTH are kept, the trial-by-trial relation between units and to the inputs is lost): a
    model can then do no better than the condition-free PSTH.

    Examples
    --------
    >>> rec = make_recording(np.arange(24).reshape(2, 3, 4), dt=1.0)
    >>> sorted(shuffled_recording(rec).activity.values.ravel()) == list(range(24))
    True
    """
    if mode not in ("all", "time", "trials"):
        raise ValueError(f"mode must be 'all', 'time' or 'trials'; got {mode!r}")
    act = recording["activity"].values
    rng = seeded_rng(seed, 72)
    out = np.empty_like(act)
    b, t, n = act.shape
    for u in range(n):
        if mode == "all":
            out[:, :, u] = rng.permutation(act[:, :, u].ravel()).reshape(b, t)
        elif mode == "trials":
            out[:, :, u] = act[rng.permutation(b), :, u]
        else:
            order = np.argsort(rng.random((b, t)), axis=1)
            out[:, :, u] = np.take_along_axis(act[:, :, u], order, axis=1)
    shuffled = recording.copy()
    shuffled["activity"] = (("trial", "time", "unit"), out)
    shuffled = shuffled.drop_vars("truth", errors="ignore")
    shuffled.attrs = {**recording.attrs, "control": f"shuffled over {mode} per unit"}
    return shuffled
