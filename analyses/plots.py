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

from ._bandit_plots import plot_alpha_sweep as plot_alpha_sweep  # noqa: E402
from ._bandit_plots import plot_bandit_curves as plot_bandit_curves  # noqa: E402
from ._figure_io import save_figure  # noqa: E402
from ._fit_plots import plot_fit_summary as plot_fit_summary  # noqa: E402
from ._fit_plots import plot_latent_trajectories as plot_latent_trajectories  # noqa: E402
from ._fit_plots import plot_psth_overlay as plot_psth_overlay  # noqa: E402
from ._fit_plots import plot_unit_fits as plot_unit_fits  # noqa: E402
from ._objects_plots import phase_map as phase_map  # noqa: E402
from ._objects_plots import plot_object_scenes as plot_object_scenes  # noqa: E402

_save = save_figure


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


def plot_robustness(robustness: xr.Dataset, *, ax=None, path: str | Path | None = None) -> Figure:
    """Performance against perturbation strength, one line per perturbation.

    Lines are the mean over seeds with a ±1 SEM band (when there are several
    seeds); the dotted line is the unperturbed performance.

    Parameters
    ----------
    robustness : xarray.Dataset
        From :func:`analyses.compute_robustness`.
    ax : matplotlib Axes, optional
    path : str or Path, optional
        Save the figure there (and close it).
    """
    fig, ax = plt.subplots(figsize=(4.5, 3.2)) if ax is None else (ax.figure, ax)
    x = robustness["strength"].values
    for i, name in enumerate(robustness["perturbation"].values):
        m = robustness["mean"].sel(perturbation=name).values
        s = robustness["sem"].sel(perturbation=name).values
        ax.plot(x, m, "o-", ms=3, color=f"C{i}", label=str(name))
        if np.isfinite(s).all():
            ax.fill_between(x, m - s, m + s, color=f"C{i}", alpha=0.2, lw=0)
    ax.axhline(float(robustness["unperturbed"].mean()), ls=":", color="0.4", label="unperturbed")
    metric = robustness.attrs.get("metric", "performance")
    ax.set(
        xlabel="perturbation strength", ylabel=metric, title=robustness.attrs.get("paradigm", "")
    )
    ax.legend(frameon=False, fontsize=7)
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


_FP_STYLE = {  # stability -> (marker, colour, filled)
    "stable": ("o", "k", True),
    "unstable": ("o", "C3", False),
    "saddle": ("x", "C1", True),
    "marginal": ("D", "C4", False),
}


def plot_fixed_points(
    fixed_points: xr.Dataset,
    pca: xr.Dataset | None = None,
    ds: xr.Dataset | None = None,
    ax: plt.Axes | None = None,
    *,
    max_trials: int = 50,
    path: str | Path | None = None,
) -> Figure:
    """Fixed and slow points in the plane of the first two PCs, over trajectories.

    The plane is that of ``pca`` (from ``compute_pca``) when given, else of a 2-component PCA
    of ``ds``, else of the fixed points themselves. Trajectories (thin grey lines, up to
    ``max_trials`` trials) are ``ds``'s states projected on it, or ``pca.projection`` when no
    ``ds`` is given. Points by stability: stable filled black circles, unstable open red
    circles, saddles orange crosses, marginal open purple diamonds; slow points smaller.
    Each group is one marker-only line labelled in the legend.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from analyses._fixed_points import compute_fixed_points
    >>> fps = compute_fixed_points(lambda h, x: torch.tanh(2.0 * h), np.random.default_rng(0)
    ...     .uniform(-1.5, 1.5, (50, 2)), device="cpu", quiet=True)
    >>> fig = plot_fixed_points(fps)
    >>> sorted(line.get_label() for line in fig.axes[0].lines)
    ['saddle', 'stable', 'unstable']
    """
    from ._dynamics import compute_pca

    states = np.asarray(fixed_points["state"].transpose("fixed_point", "unit").values, float)
    n_units = states.shape[1]
    if pca is None and ds is not None:
        pca = compute_pca(ds, n_components=min(2, n_units))
    if pca is not None:
        mean = np.asarray(pca["mean"].values, float)
        comps = np.asarray(pca["components"].transpose("component", "unit").values, float)[:2]
        if comps.shape[1] != n_units:
            raise ValueError(
                f"pca has {comps.shape[1]} units but the fixed points have {n_units}: fit the "
                "PCA on trajectories of the same model"
            )
    else:
        mean = states.mean(0) if len(states) else np.zeros(n_units)
        if len(states) > 1:
            comps = np.linalg.svd(states - mean, full_matrices=False)[2][:2]
        else:
            comps = np.eye(n_units)[:2]

    def project(a: np.ndarray) -> np.ndarray:
        p = (a - mean) @ comps.T
        return np.pad(p, [(0, 0)] * (p.ndim - 1) + [(0, 2 - p.shape[-1])])

    own = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    else:
        fig = ax.figure
    if ds is not None:
        x = np.asarray(ds["state"].transpose("trial", "time", "unit").values, float)
        valid = (
            np.asarray(ds["valid"].transpose("trial", "time").values, bool)
            if "valid" in ds
            else np.ones(x.shape[:2], bool)
        )
        for i in range(min(max_trials, len(x))):
            p = project(x[i][valid[i]])
            ax.plot(p[:, 0], p[:, 1], lw=0.5, color="0.6", alpha=0.7, zorder=1)
    elif pca is not None and "projection" in pca:
        proj = pca["projection"].transpose("trial", "time", "component").values[:max_trials, :, :2]
        proj = np.pad(proj, [(0, 0), (0, 0), (0, 2 - proj.shape[-1])])
        for traj in proj:
            ax.plot(traj[:, 0], traj[:, 1], lw=0.5, color="0.6", alpha=0.7, zorder=1)
    p = project(states)
    stability = fixed_points["stability"].values.astype(str)
    kind = (
        fixed_points["kind"].values.astype(str)
        if "kind" in fixed_points
        else np.full(len(states), "fixed")
    )
    for stab, (marker, colour, filled) in _FP_STYLE.items():
        for k, size in (("fixed", 8), ("slow", 4)):
            sel = (stability == stab) & (kind == k)
            if not sel.any():
                continue
            ax.plot(
                p[sel, 0],
                p[sel, 1],
                linestyle="none",
                marker=marker,
                ms=size,
                mew=1.5,
                color=colour,
                mfc=colour if filled else "none",
                label=stab if k == "fixed" else f"{stab} (slow)",
                zorder=3,
            )
    if pca is not None:
        evr = pca["explained_variance_ratio"].values
        labels = [f"PC{i + 1} ({evr[i]:.0%})" if i < len(evr) else f"PC{i + 1}" for i in (0, 1)]
    else:
        labels = ["PC1 (of fixed points)", "PC2 (of fixed points)"]
    n_slow = int((kind == "slow").sum())
    title = f"{len(states) - n_slow} fixed, {n_slow} slow points"
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    if len(states):
        ax.legend(frameon=False, fontsize=7)
    if own:
        fig.tight_layout()
    return _save(fig, path)


def plot_rate_maps(
    maps: xr.Dataset | xr.DataArray,
    scores: xr.Dataset | None = None,
    *,
    autocorr: bool = True,
    top: int = 16,
    columns: int = 8,
    path: str | Path | None = None,
) -> Figure:
    """Rate maps (and their spatial autocorrelograms) of up to ``top`` units.

    With ``scores`` (from :func:`analyses.compute_grid_scores`) the units with the highest
    ``score60`` come first and each title gives ``score60`` and ``score90``; without, the
    first ``top`` units in order. Unvisited bins are blank; autocorrelograms share a
    colour scale from −1 to 1, with the annuli's inner radius and largest outer radius drawn.

    Parameters
    ----------
    maps : xarray.Dataset or xarray.DataArray
        From :func:`analyses.compute_rate_maps` (or its ``rate_map (unit, y, x)``).
    scores : xarray.Dataset, optional
    autocorr : bool, default True
        Draw each unit's autocorrelogram below its map.
    top : int, default 16
    columns : int, default 8
    path : str or Path, optional
        Save the figure there (and close it).

    Examples
    --------
    >>> import numpy as np
    >>> from analyses import compute_grid_scores
    >>> y, x = np.mgrid[0:20, 0:20]
    >>> maps = xr.DataArray(np.stack([np.cos(x) + np.cos(y), np.cos(x / 2)]), dims=("unit", "y", "x"))
    >>> fig = plot_rate_maps(maps, compute_grid_scores(maps), top=1)
    >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
    ['unit 1\\ng60 0.06  g90 0.37']
    """
    from ._autocorrelograms import compute_autocorrelograms

    da = maps["rate_map"] if isinstance(maps, xr.Dataset) else maps
    da = da.transpose("unit", "y", "x")
    order = np.arange(da.sizes["unit"])
    if scores is not None:
        s60 = np.asarray(scores["score60"].values, float)
        order = np.argsort(np.where(np.isnan(s60), -np.inf, -s60), kind="stable")
    order = order[: max(int(top), 1)]
    sel = da.isel(unit=order)
    sac = compute_autocorrelograms(sel) if autocorr else None
    cols = min(len(order), max(int(columns), 1))
    blocks = -(-len(order) // cols)
    per = 2 if autocorr else 1
    fig, axes = plt.subplots(
        blocks * per, cols, figsize=(1.5 * cols, 1.6 * blocks * per), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    has_xy = "x" in da.coords and "y" in da.coords
    extent = None
    if has_xy:
        x, y = da["x"].values, da["y"].values
        dx, dy = (x[1] - x[0]) / 2 if len(x) > 1 else 0.5, (y[1] - y[0]) / 2 if len(y) > 1 else 0.5
        extent = (x[0] - dx, x[-1] + dx, y[0] - dy, y[-1] + dy)
    viridis = plt.get_cmap("viridis").with_extremes(bad="white")
    for k, u in enumerate(order):
        row, col = divmod(k, cols)
        ax = axes[row * per, col]
        ax.imshow(sel.values[k], origin="lower", extent=extent, cmap=viridis)
        title = f"unit {sel['unit'].values[k]}" if "unit" in sel.coords else f"unit {u}"
        if scores is not None:
            g60, g90 = (float(scores[v].values[u]) for v in ("score60", "score90"))
            title += f"\ng60 {g60:.2f}  g90 {g90:.2f}"
        ax.set_title(title, fontsize=7)
        if sac is not None:
            ax2 = axes[row * per + 1, col]
            ax2.imshow(sac.values[k], origin="lower", cmap="RdBu_r", vmin=-1, vmax=1)
            h, w = sac.shape[1:]
            n = min(h + 1, w + 1) / 2
            for r in (0.2 * n, n):
                ax2.add_patch(
                    plt.Circle(((w - 1) / 2, (h - 1) / 2), r, fill=False, lw=0.5, color="k")
                )
    fig.tight_layout()
    return _save(fig, path)
