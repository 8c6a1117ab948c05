"""Grid-cell analysis of a model trained on a ``navigation/*`` paradigm.

Imported lazily by the CLI (``neurosim grid-analysis``): like ``_demo`` it reaches up into
``analyses``. Loads a checkpoint, simulates held-out trajectories, decodes position, builds
rate maps, scores them (gridness, spacing, orientation, border, a shuffle threshold), runs a
PCA and a Lyapunov spectrum of the trained network, and writes ``summary.json``,
``grid_scores.nc`` and figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

import paradigms

from ._checkpoint import load_checkpoint
from ._simulate import batch_from_trajectories, simulate
from ._trajectories import atomic_write

#: A unit counts as grid-like when its score60 exceeds this and the shuffle threshold.
GRID_THRESHOLD = 0.3


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def run_grid_analysis(
    checkpoint: str | Path,
    out: str | Path,
    *,
    n_trials: int = 2000,
    n_steps: int | None = None,
    seed: int = 1,
    n_bins: int = 20,
    n_shuffles: int = 100,
    lyapunov_trajectories: int = 4,
    lyapunov_steps: int = 100,
    lyapunov_warmup: int = 20,
    quiet: bool = True,
) -> dict[str, Any]:
    """Analyse the navigation model in ``checkpoint``; write results under ``out``.

    ``n_steps`` overrides the paradigm's trial length for the rate maps (default: the
    training length); position decoding is always scored on the training length.
    Returns the summary written to ``out/summary.json``.
    """
    import analyses
    from analyses import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(checkpoint)
    model.eval()
    para = meta["paradigm"]
    if not str(para["id"]).startswith("navigation/"):
        raise ValueError(f"grid-analysis needs a navigation/* paradigm, got {para['id']!r}")
    kwargs = dict(para["kwargs"])
    task = paradigms.make(para["id"], **kwargs)
    train_steps = int(task.n_steps)
    long_task = task
    if n_steps is not None and int(n_steps) != train_steps:
        long_task = paradigms.make(para["id"], **{**kwargs, "n_steps": int(n_steps)})

    # decoding on the training length
    ds = simulate(model, task, n_trials, seed=seed, noise=False, quiet=quiet)
    batch = batch_from_trajectories(ds)
    out_v = ds["output"].values
    decoded = task.decode_position(out_v)
    true = ds["position"].values
    err_cm = np.linalg.norm(decoded - true, axis=-1) * 100.0
    # rate maps (optionally on longer trajectories)
    ds_maps = ds
    if long_task is not task:
        ds_maps = simulate(model, long_task, n_trials, seed=seed + 1, noise=False, quiet=quiet)
    arena = "circle" if task.arena == "circle" else "square"
    maps = analyses.compute_rate_maps(ds_maps, arena_size=task.size, n_bins=n_bins, arena=arena)
    scores = analyses.compute_grid_scores(maps)
    threshold = float(analyses.shuffle_threshold(maps, n_shuffles=n_shuffles, seed=0))
    s60 = scores["score60"].values
    with np.errstate(invalid="ignore"):
        above = np.nan_to_num(s60, nan=-np.inf)
        frac_03 = float((above > GRID_THRESHOLD).mean())
        frac_grid = float(((above > GRID_THRESHOLD) & (above > threshold)).mean())
        frac_shuffle = float((above > threshold).mean())

    result = maps.merge(scores, compat="override")
    result.attrs = {
        "shuffle_threshold": threshold,
        "grid_threshold": GRID_THRESHOLD,
        "checkpoint": str(checkpoint),
        "paradigm": str(para["id"]),
    }
    for name in list(result.data_vars) + list(result.coords):
        result[name].attrs = {
            k: v for k, v in result[name].attrs.items() if isinstance(v, str | int | float)
        }
    atomic_write(out / "grid_scores.nc", lambda tmp: result.to_netcdf(tmp, engine="h5netcdf"))

    # figures
    plots.plot_rate_maps(maps, scores, top=16, columns=8, path=out / "rate_maps_top.png")
    _plot_decoding(true, decoded, task.size, out / "decoding.png")
    pca = analyses.compute_pca(ds, n_components=5)
    _plot_pca(pca, out / "pca.png")

    # Lyapunov spectrum of the trained network along a few trajectories
    lya = _lyapunov(
        model, para["id"], kwargs, lyapunov_trajectories, lyapunov_steps, lyapunov_warmup, seed
    )

    order = np.argsort(np.nan_to_num(s60, nan=-np.inf))[::-1]
    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "paradigm": para["id"],
        "train_step": int(meta.get("step", -1)),
        "n_units": int(ds.sizes["unit"]),
        "heldout_trials": int(n_trials),
        "heldout_steps_decoding": train_steps,
        "heldout_steps_rate_maps": int(long_task.n_steps),
        "decoding_error_cm": {
            "mean": float(err_cm.mean()),
            "median": float(np.median(err_cm)),
            "last_step_mean": float(err_cm[:, -1].mean()),
        },
        "performance": float(task.performance(out_v, batch).mean()),
        "rate_map_bins": n_bins,
        "shuffle_threshold": threshold,
        "grid_threshold": GRID_THRESHOLD,
        "fraction_score60_above_0.3": frac_03,
        "fraction_score60_above_shuffle": frac_shuffle,
        "fraction_grid": frac_grid,
        "score60_max": _finite(np.nanmax(s60)) if np.isfinite(s60).any() else None,
        "score60_median": _finite(np.nanmedian(s60)) if np.isfinite(s60).any() else None,
        "top_units": [
            {
                "unit": int(scores["unit"].values[i]),
                "score60": _finite(s60[i]),
                "score90": _finite(scores["score90"].values[i]),
                "spacing_m": _finite(scores["spacing"].values[i]),
                "orientation_rad": _finite(scores["orientation"].values[i]),
                "border_score": _finite(scores["border_score"].values[i]),
            }
            for i in order[:10]
        ],
        "pca_explained_variance_ratio": [float(v) for v in pca["explained_variance_ratio"].values],
        "pca_participation_ratio": float(pca.attrs["participation_ratio"]),
        "lyapunov": lya,
    }
    summary = _json_safe(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary


def _json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats (e.g. ``-inf`` exponents of dead units) as None."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return _finite(obj)
    return obj


def _lyapunov(
    model: Any, pid: str, kwargs: dict[str, Any], n_traj: int, n_steps: int, warmup: int, seed: int
) -> dict[str, Any]:
    import analyses

    length = n_steps + warmup
    task = paradigms.make(pid, **{**kwargs, "n_steps": length})
    batch = task.batch(n_traj, rng=seed + 2)
    inputs = torch.as_tensor(batch.inputs, dtype=torch.float32)
    h0 = model.initial_state(n_traj).detach().clone()
    k = min(10, int(model.n_units))
    spec = analyses.compute_lyapunov_spectrum(
        model.step, h0, inputs, n_exponents=k, n_steps=n_steps, warmup=warmup, dt=model.dt,
        device="cpu", quiet=True,
    )  # fmt: skip
    mean = spec["mean"].values
    return {
        "n_trajectories": n_traj,
        "n_steps": n_steps,
        "warmup": warmup,
        "units": "1/ms",
        "exponents_mean": [float(v) for v in mean],
        "exponents_sem": [float(v) for v in spec["sem"].values],
        "max_exponent": float(mean[0]),
        "kaplan_yorke_of_mean": float(spec["kaplan_yorke_of_mean"].values),
    }


def _plot_decoding(true: np.ndarray, decoded: np.ndarray, size: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(6, len(true))
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), squeeze=False)
    half = size / 2
    for i, ax in enumerate(axes[0]):
        ax.plot(true[i, :, 0], true[i, :, 1], "k.-", lw=1, ms=3, label="true")
        ax.plot(decoded[i, :, 0], decoded[i, :, 1], "r.--", lw=1, ms=3, label="decoded")
        ax.plot(true[i, 0, 0], true[i, 0, 1], "ko", ms=5)
        ax.set(xlim=(-half, half), ylim=(-half, half), aspect="equal", xticks=[], yticks=[])
        err = np.linalg.norm(decoded[i] - true[i], axis=-1).mean() * 100
        ax.set_title(f"trial {i}: {err:.1f} cm", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_pca(pca: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proj = pca["projection"].values
    evr = pca["explained_variance_ratio"].values
    fig, ax = plt.subplots(figsize=(4.5, 4))
    cmap = plt.get_cmap("viridis", 12)
    for i in range(min(12, len(proj))):
        ax.plot(proj[i, :, 0], proj[i, :, 1], "-", color=cmap(i), lw=1)
        ax.plot(proj[i, :1, 0], proj[i, :1, 1], "o", color=cmap(i), ms=3)
    ax.set(
        xlabel=f"PC1 ({evr[0]:.0%})",
        ylabel=f"PC2 ({evr[1]:.0%})" if len(evr) > 1 else "PC2",
        title="held-out trajectories (start: dot)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
