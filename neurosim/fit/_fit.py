"""One entry point for both fitted model families, and what a fit writes to disk."""

from __future__ import annotations

import inspect
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from .._checkpoint import write_checkpoint
from .._config import ConfigError
from .._recordings import validate_recording
from ..models import RecurrentModel
from ._constrained import fit_constrained
from ._latent_fit import fit_latent

FITTERS = {"constrained": fit_constrained, "latent": fit_latent}
_RENAME = {
    "constrained": {"activity": "prediction"},
    "latent": {"activity": "data", "rate": "prediction", "state": "latent"},
}


@dataclass(frozen=True)
class FitResult:
    """A fitted model and how well it fits.

    Attributes
    ----------
    kind : {"constrained", "latent"}
    model : RecurrentModel
        An ordinary neurosim model (``RateRNN`` or ``LatentRNN``): simulate, perturb, find its
        fixed points or Lyapunov spectrum as for any other.
    metrics : dict
        Constrained: ``pvar_train``, ``pvar_val``, ``r2_val_median``; latent: ``co_bps``,
        ``baseline_co_bps``, ``heldin_bps`` (counts) or ``co_r2``, ``co_pvar`` (rates), and
        ``psth_r2`` / ``decoding_r2`` when conditions / behaviour were given.
    history : pandas.DataFrame
        One row per epoch.
    predictions : xarray.Dataset
        Evaluation trials: ``data`` and ``prediction`` over ``(trial, time, unit)`` (``latent``
        over ``(trial, time, latent)`` for the latent model), the trial table as coordinates,
        ``metrics`` in attrs (JSON).
    split : dict
        Trial (and neuron) indices of each part.
    details : object
        The family's own result (:class:`ConstrainedFit` or :class:`LatentFit`).
    """

    kind: str
    model: RecurrentModel
    metrics: dict[str, float]
    history: pd.DataFrame
    predictions: xr.Dataset
    split: dict[str, list[int]]
    details: Any


def fit_options(model: str) -> list[str]:
    """Keyword options the fitter of ``model`` accepts (what a ``--config`` section may set).

    Examples
    --------
    >>> "method" in fit_options("constrained"), "n_latent" in fit_options("latent")
    (True, True)
    """
    if model not in FITTERS:
        raise ConfigError(f"model must be one of {sorted(FITTERS)}; got {model!r}")
    params = inspect.signature(FITTERS[model]).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _check_options(model: str, options: Mapping[str, Any]) -> None:
    allowed = fit_options(model)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for model={model!r}; accepted: {', '.join(allowed)}"
        )


def _summary(kind: str, details: Any) -> tuple[dict[str, float], dict[str, list[int]]]:
    if kind == "latent":
        metrics = {k: float(v) for k, v in details.metrics.items()}
        return metrics, details.split.to_dict()
    r2 = np.asarray(details.r2_val, dtype=float)
    metrics = {
        "pvar_train": float(details.pvar_train),
        "pvar_val": float(details.pvar_val),
        "r2_val_median": float(np.nanmedian(r2)) if np.isfinite(r2).any() else float("nan"),
        "epochs": float(len(details.history)),
    }
    split = {"train": [int(i) for i in details.train_trials]}
    split["val"] = [int(i) for i in details.val_trials]
    return metrics, split


def fit(
    recording: xr.Dataset,
    model: Literal["constrained", "latent"] = "constrained",
    **options: Any,
) -> FitResult:
    """Fit a data-constrained RNN or a latent RNN to a recording.

    Parameters
    ----------
    recording : xarray.Dataset
        From :func:`neurosim.load_recording` (or :func:`neurosim.fit.teacher_recording`).
    model : {"constrained", "latent"}
        ``"constrained"``: one model unit per recorded neuron, fitted by RLS/FORCE or BPTT
        (:func:`fit_constrained`); ``"latent"``: an LFADS-like latent RNN with a Poisson or
        Gaussian observation model, co-smoothing on held-out neurons (:func:`fit_latent`).
    **options
        Passed on to the fitter; :func:`fit_options` lists them. Unknown names are an error.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import paradigms, neurosim
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> teacher = neurosim.models.RateRNN(task.n_inputs, 6, task.n_outputs, dt=task.dt,
    ...                                   tau=200.0, activation="tanh")
    >>> rec = neurosim.fit.teacher_recording(teacher, task, n_trials=20, seed=0)
    >>> res = fit(rec, "constrained", n_epochs=2, quiet=True)
    >>> res.model.n_units, {"data", "prediction"} <= set(res.predictions.data_vars)
    (6, True)
    """
    if model not in FITTERS:
        raise ValueError(f"model must be one of {sorted(FITTERS)}; got {model!r}")
    validate_recording(recording)
    _check_options(model, options)
    details = FITTERS[model](recording, **options)
    metrics, split = _summary(model, details)
    names = {k: v for k, v in _RENAME[model].items() if k in details.predictions}
    predictions = details.predictions.rename(names)
    predictions.attrs = {
        **predictions.attrs,
        "kind": recording.attrs["kind"],
        "dt": float(recording.attrs["dt"]),
        "fit": model,
        "metrics": json.dumps(metrics),
    }
    return FitResult(
        kind=model,
        model=details.model,
        metrics=metrics,
        history=details.history,
        predictions=predictions,
        split=split,
        details=details,
    )


def _atomic_netcdf(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_fit(result: FitResult, out: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a fit: ``model/last`` (checkpoint), ``predictions.nc``, ``history.csv``, ``summary.json``.

    The checkpoint is an ordinary neurosim checkpoint (:func:`neurosim.load_checkpoint`
    rebuilds the fitted model). Every file is written atomically.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": result.model.config(), "fit": result.kind, "metrics": result.metrics}
    write_checkpoint(out / "model", model=result.model, optimizer=None, step=len(result.history),
                     history=[], meta=meta)  # fmt: skip
    _atomic_netcdf(result.predictions, out / "predictions.nc")
    result.history.to_csv(out / "history.csv", index=False)
    summary = {"fit": result.kind, "metrics": result.metrics, "split": result.split}
    summary.update(extra or {})
    tmp = out / f".summary.json.tmp-{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    os.replace(tmp, out / "summary.json")
    return out
