"""Figures for training runs and trajectories (matplotlib, Agg-safe)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


def plot_learning_curve(
    history: pd.DataFrame, *, chance: float | None = None, path: str | Path | None = None
) -> Figure:
    """Training loss (per step) and held-out performance (per evaluation) against step."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    ax1.plot(history["step"], history["loss"], lw=0.8, color="0.3")
    ax1.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ev = history.dropna(subset=["performance"])
    ax2.plot(ev["step"], ev["performance"], "o-", ms=3, color="C0")
    if chance is not None:
        ax2.axhline(chance, ls=":", color="0.5", label="chance")
        ax2.legend(frameon=False)
    ax2.set(xlabel="step", ylabel="performance", ylim=(0, 1), title="held-out performance")
    fig.tight_layout()
    return _save(fig, path)


def plot_psychometric(curve: xr.Dataset, *, path: str | Path | None = None) -> Figure:
    """P(positive choice) against signed stimulus strength, with 95 % bounds and logistic fit."""
    from ._behaviour import _logistic

    x = curve["condition"].values
    p = curve["p_positive"].values
    fig, ax = plt.subplots(figsize=(4, 3))
    err = np.clip([p - curve["p_low"].values, curve["p_high"].values - p], 0, None)
    ax.errorbar(x, p, yerr=err, fmt="o", color="k", ms=4)
    if np.isfinite(curve.attrs.get("slope", np.nan)):
        xs = np.linspace(x.min(), x.max(), 200)
        ax.plot(
            xs,
            _logistic(xs, curve.attrs["bias"], curve.attrs["slope"], curve.attrs["lapse"]),
            color="C3",
        )
    ax.set(
        xlabel=f"signed {curve.attrs.get('stimulus', 'stimulus')}",
        ylabel="P(right choice)",
        ylim=(-0.02, 1.02),
        title=f"psychometric curve (accuracy {curve.attrs.get('accuracy', np.nan):.3f})",
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_pca_trajectories(
    pca: xr.Dataset,
    *,
    color_by: str = "coh",
    style_by: xr.DataArray | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Condition-averaged trajectories in the plane of the first two PCs.

    Trials are grouped by the trial coordinate ``color_by`` (colour) and by the
    values of ``style_by`` (e.g. the choice; solid for the first group, dashed for the next).
    """
    proj = pca["projection"]
    colours = np.unique(proj[color_by].values)
    cmap = plt.get_cmap("viridis", len(colours))
    styles = ["-", "--", ":", "-."]
    groups = np.unique(style_by.values) if style_by is not None else [None]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for gi, g in enumerate(groups):
        for ci, c in enumerate(colours):
            sel = proj[color_by].values == c
            if style_by is not None:
                sel &= style_by.values == g
            if not sel.any():
                continue
            mean = np.nanmean(proj.values[sel][:, :, :2], axis=0)
            label = f"{color_by}={c:g}" if gi == 0 else None
            ax.plot(mean[:, 0], mean[:, 1], styles[gi % 4], color=cmap(ci), lw=1.5, label=label)
            ax.plot(mean[-1:, 0], mean[-1:, 1], "o", color=cmap(ci), ms=3)
    evr = pca["explained_variance_ratio"].values
    ax.set(
        xlabel=f"PC1 ({evr[0]:.0%})",
        ylabel=f"PC2 ({evr[1]:.0%})",
        title="trajectories by condition",
    )
    ax.legend(
        frameon=False,
        fontsize=7,
        title=None if style_by is None else "solid/dashed: choice",
        title_fontsize=7,
    )
    fig.tight_layout()
    return _save(fig, path)
