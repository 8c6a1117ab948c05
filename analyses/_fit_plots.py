"""Figures of a fit to recorded activity: per-unit traces, PSTH overlays, summary, latents.

Each takes the ``predictions`` dataset of :func:`neurosim.fit.fit`: ``data`` and
``prediction`` over ``(trial, time, unit)`` on evaluation trials (optionally ``latent`` over
``(trial, time, latent)``), trial-table coordinates, and the fit's metrics in attrs.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._figure_io import save_figure


def _unit_r2(ds: xr.Dataset) -> np.ndarray:
    d = ds["data"].values.reshape(-1, ds.sizes["unit"]).astype(float)
    p = ds["prediction"].values.reshape(-1, ds.sizes["unit"]).astype(float)
    sst = ((d - d.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1 - ((d - p) ** 2).sum(0) / np.where(sst > 0, sst, 1), np.nan)


def _pick_units(ds: xr.Dataset, n: int) -> list[int]:
    """Best, median and worst fitted units (by R²), ``n`` in all, in that order."""
    r2 = np.nan_to_num(_unit_r2(ds), nan=-np.inf)
    order = np.argsort(-r2)
    idx = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return [int(order[i]) for i in idx]


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    k = np.ones(width) / width
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), -2, x)


def plot_unit_fits(
    predictions: xr.Dataset,
    *,
    n_units: int = 6,
    n_trials: int = 3,
    path: str | Path | None = None,
) -> Figure:
    """Data against prediction for the best, median and worst units, a few trials each.

    Counts are shown smoothed over 3 bins (the prediction is an expected count).
    """
    units = _pick_units(predictions, n_units)
    r2 = _unit_r2(predictions)
    counts = predictions.attrs.get("kind") == "counts"
    t = predictions["time"].values
    fig, axes = plt.subplots(len(units), 1, figsize=(7, 1.3 * len(units) + 0.6), squeeze=False)
    for ax, u in zip(axes[:, 0], units, strict=True):
        for j in range(min(n_trials, predictions.sizes["trial"])):
            d = predictions["data"].isel(trial=j, unit=u).values.astype(float)
            d = _smooth(d[:, None], 3 if counts else 1)[:, 0]
            p = predictions["prediction"].isel(trial=j, unit=u).values
            offset = j * (t[-1] - t[0] + 2 * (t[1] - t[0]) if len(t) > 1 else 1)
            ax.plot(t + offset, d, color="0.55", lw=0.9, label="data" if j == 0 else None)
            ax.plot(t + offset, p, color="C3", lw=1.2, label="model" if j == 0 else None)
        ax.set_ylabel(f"unit {int(predictions['unit'][u])}\nR² {r2[u]:.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(frameon=False, fontsize=7, ncol=2, loc="upper right")
    axes[-1, 0].set_xlabel(f"time (ms), {n_trials} trials side by side")
    fig.suptitle("per-unit fits on held-out trials (best → worst)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_psth_overlay(
    predictions: xr.Dataset,
    condition: str,
    *,
    n_units: int = 4,
    path: str | Path | None = None,
) -> Figure:
    """Condition-averaged activity (dots: data, lines: model) for a few units."""
    if condition not in predictions.coords:
        trial_coords = [str(c) for c in predictions.coords if predictions[c].dims == ("trial",)]
        raise ValueError(f"condition {condition!r} is not a trial coordinate; have {trial_coords}")
    units = _pick_units(predictions, n_units)
    labels = np.unique(predictions[condition].values)
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(labels)))
    t = predictions["time"].values
    fig, axes = plt.subplots(1, len(units), figsize=(3 * len(units), 2.6), squeeze=False)
    for ax, u in zip(axes[0], units, strict=True):
        for c, col in zip(labels, colours, strict=True):
            sel = predictions.isel(unit=u).where(predictions[condition] == c, drop=True)
            ax.plot(t, sel["data"].mean("trial"), "o", ms=2, color=col)
            ax.plot(t, sel["prediction"].mean("trial"), "-", lw=1.2, color=col, label=str(c))
        ax.set(title=f"unit {int(predictions['unit'][u])}", xlabel="time (ms)")
    axes[0, 0].set_ylabel("mean activity")
    axes[0, -1].legend(title=condition, frameon=False, fontsize=6, title_fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_fit_summary(predictions: xr.Dataset, *, path: str | Path | None = None) -> Figure:
    """Histogram of per-unit R² on evaluation trials, with the fit's headline metrics."""
    r2 = _unit_r2(predictions)
    metrics = json.loads(predictions.attrs.get("metrics", "{}"))
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(r2[np.isfinite(r2)], bins=20, range=(min(-0.2, np.nanmin(r2)), 1), color="C0")
    ax.set(xlabel="R² per unit (held-out trials)", ylabel="units")
    text = "\n".join(
        f"{k}: {v:.3f}" for k, v in metrics.items() if isinstance(v, int | float) and np.isfinite(v)
    )
    ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", fontsize=7, family="monospace")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_latent_trajectories(
    predictions: xr.Dataset,
    condition: str | None = None,
    *,
    path: str | Path | None = None,
) -> Figure:
    """Model states on evaluation trials projected on their top two principal components."""
    if "latent" not in predictions:
        raise ValueError("predictions hold no 'latent' variable (model states) to plot")
    z = predictions["latent"].values.astype(float)
    flat = z.reshape(-1, z.shape[-1])
    flat = flat - flat.mean(0)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    pcs = (z - z.reshape(-1, z.shape[-1]).mean(0)) @ vt[:2].T
    var = s[:2] ** 2 / np.sum(s**2)
    fig, ax = plt.subplots(figsize=(4, 3.6))
    if condition is not None and condition in predictions.coords:
        values = predictions[condition].values
        labels = np.unique(values)
        colours = dict(zip(labels, plt.cm.viridis(np.linspace(0, 0.9, len(labels))), strict=True))
    else:
        values, colours = np.zeros(z.shape[0]), {0.0: "C0"}
    for b in range(z.shape[0]):
        ax.plot(pcs[b, :, 0], pcs[b, :, 1], lw=0.6, alpha=0.7, color=colours[values[b]])
        ax.plot(pcs[b, 0, 0], pcs[b, 0, 1], ".", ms=3, color="k")
    ax.set(xlabel=f"PC1 ({var[0]:.0%})", ylabel=f"PC2 ({var[1]:.0%})", title="model states")
    if condition is not None:
        handles = [plt.Line2D([], [], color=c, label=str(k)) for k, c in colours.items()]
        ax.legend(handles=handles, title=condition, frameon=False, fontsize=6, title_fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
