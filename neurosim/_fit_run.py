"""``neurosim fit`` and ``neurosim teacher-recording``: load, fit, save, plot.

Imported lazily by the CLI only: like ``_demo`` it reaches up into ``analyses`` for figures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ._config import ConfigError, read_toml

_SECTIONS = ("model", "load", "fit")
_MAX_CONDITIONS = 12


def read_fit_config(path: Path | None) -> dict[str, Any]:
    """``[load]`` and ``[fit]`` tables (and an optional top-level ``model``) of a TOML file."""
    data = read_toml(path) if path is not None else {}
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {unknown}; a fit config has `model = ...`, "
            "a [load] table (load_recording options) and a [fit] table (fitter options)"
        )
    for section in ("load", "fit"):
        if not isinstance(data.get(section, {}), Mapping):
            raise ConfigError(f"{path}: [{section}] must be a table; got {data[section]!r}")
    return data


def pick_condition(ds: xr.Dataset, condition: str | None) -> str | None:
    """The trial coordinate to average PSTHs over: the given one, else the first with few values."""
    trial_coords = [str(c) for c in ds.coords if ds[c].dims == ("trial",) and str(c) != "trial"]
    if condition is not None:
        if condition not in trial_coords:
            raise ValueError(f"condition {condition!r} is not a trial column; have {trial_coords}")
        return condition
    for name in trial_coords:
        n = len(np.unique(ds[name].values))
        if 1 < n <= _MAX_CONDITIONS:
            return name
    return None


def run_fit(
    data: Path,
    *,
    model: str | None,
    config: Path | None,
    out: Path,
    load_options: Mapping[str, Any],
    condition: str | None = None,
    seed: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Load ``data``, fit, and write the fit, its predictions and figures under ``out``."""
    from analyses import plots

    from ._recording_sources import load_recording
    from .fit import fit

    t0 = time.perf_counter()
    cfg = read_fit_config(config)
    model = model or cfg.get("model", "constrained")
    load = {**cfg.get("load", {}), **{k: v for k, v in load_options.items() if v is not None}}
    rec = load_recording(data, **load)
    options = dict(cfg.get("fit", {}))
    if seed is not None:
        options["seed"] = seed
    options.setdefault("quiet", quiet)
    condition = pick_condition(rec, condition)
    if model == "latent" and condition is not None:
        options.setdefault("conditions", condition)
    result = fit(rec, model, **options)
    pred = result.predictions
    if "latent" not in pred:  # constrained: the model's units are the state
        pred = pred.assign(latent=pred["prediction"].rename(unit="latent"))
    figures = out / "figures"
    plots.plot_unit_fits(pred, path=figures / "unit_fits.png")
    plots.plot_fit_summary(pred, path=figures / "fit_summary.png")
    plots.plot_latent_trajectories(pred, condition, path=figures / "latents.png")
    if condition is not None:
        plots.plot_psth_overlay(pred, condition, path=figures / "psth.png")
    from .fit import save_fit

    extra = {
        "data": str(data),
        "load": load,
        "options": {k: v for k, v in options.items() if k != "quiet"},
        "recording": {
            "kind": rec.attrs["kind"],
            "dt": float(rec.attrs["dt"]),
            "n_trials": int(rec.sizes["trial"]),
            "n_units": int(rec.sizes["unit"]),
            "n_time": int(rec.sizes["time"]),
            "excluded": rec.attrs.get("excluded", "[]"),
        },
        "condition": condition,
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }
    save_fit(result, out, extra=extra)
    return {"metrics": result.metrics, "model": model, **extra}


def run_teacher_recording(
    checkpoint: Path,
    out: Path,
    *,
    n_trials: int,
    kind: str,
    seed: int,
    noise_sd: float,
) -> xr.Dataset:
    """Record a trained model on its paradigm and write ``out`` (``.nwb`` or ``.nc``)."""
    import paradigms

    from ._checkpoint import load_checkpoint
    from ._nwb import export_nwb
    from .fit import teacher_recording

    net, meta = load_checkpoint(checkpoint)
    para = meta["paradigm"]
    task = paradigms.make(para["id"], **para["kwargs"])
    rec = teacher_recording(net, task, n_trials, seed, kind=kind, noise_sd=noise_sd)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".nwb":
        if kind != "counts":
            raise ValueError("an .nwb recording holds spike times: use --kind counts")
        export_nwb(rec, out)
    elif out.suffix in (".nc", ".h5"):
        from .fit._fit import _atomic_netcdf

        _atomic_netcdf(rec, out)
    else:
        raise ValueError(f"--out must end in .nwb or .nc; got {out.name!r}")
    return rec
