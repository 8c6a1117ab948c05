"""Figures of bandit behaviour: learning curves per agent and the Rényi α sweep."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._bandit_behaviour import compute_bandit_curves  # noqa: E402
from ._figure_io import save_figure  # noqa: E402

ALPHA_PANELS = (
    ("choice_entropy", "choice entropy (bits)"),
    ("switch_rate", "switch rate"),
    ("total_regret", "total regret"),
    ("sharpe", "reward / SD (Sharpe)"),
)


_save = save_figure


def plot_bandit_curves(
    runs: Mapping[str, xr.Dataset], *, title: str = "", path: str | Path | None = None
) -> Figure:
    """Cumulative regret and P(best arm) against trial, one line (with 95 % CI) per agent.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 5, 20)
    >>> fig = plot_bandit_curves({"random": ds})
    >>> len(fig.axes)
    2
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for i, (name, ds) in enumerate(runs.items()):
        c = compute_bandit_curves(ds)
        t = c["trial"].values + 1
        for ax, var in ((ax1, "cumulative_regret"), (ax2, "p_best")):
            m, h = c[var].values, np.nan_to_num(c[f"{var}_ci"].values)
            ax.plot(t, m, color=f"C{i}", lw=1.2, label=name)
            ax.fill_between(t, m - h, m + h, color=f"C{i}", alpha=0.2, lw=0)
    ax1.set(xlabel="trial", ylabel="cumulative regret", title=title or "regret")
    ax2.set(xlabel="trial", ylabel="P(best arm)", ylim=(0, 1.02), title="best-arm choices")
    ax2.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_alpha_sweep(sweep: xr.Dataset, *, path: str | Path | None = None) -> Figure:
    """Behaviour of the Rényi agent against α (log axis): mean ± 95 % CI over sessions.

    Parameters
    ----------
    sweep : xarray.Dataset
        Dim ``alpha``; for each metric ``m`` of ``ALPHA_PANELS`` the variables ``m`` (mean)
        and ``m_ci`` (CI half-width), as written by ``scripts/study_bandits.py``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = np.array([0.1, 1.0, 10.0])
    >>> v = {m: ("alpha", a) for m, _ in ALPHA_PANELS}
    >>> v.update({f"{m}_ci": ("alpha", 0 * a) for m, _ in ALPHA_PANELS})
    >>> len(plot_alpha_sweep(xr.Dataset(v, coords={"alpha": a})).axes)
    4
    """
    missing = [m for m, _ in ALPHA_PANELS if m not in sweep or f"{m}_ci" not in sweep]
    if missing:
        raise ValueError(f"sweep lacks metric(s) {missing} (need each m and m_ci over 'alpha')")
    alpha = sweep["alpha"].values
    fig, axes = plt.subplots(1, len(ALPHA_PANELS), figsize=(3.0 * len(ALPHA_PANELS), 3.0))
    for ax, (name, label) in zip(axes, ALPHA_PANELS, strict=True):
        ax.errorbar(alpha, sweep[name].values, yerr=sweep[f"{name}_ci"].values, fmt="o-", ms=3)
        ax.set(xscale="log", xlabel="α", ylabel=label)
    fig.suptitle(sweep.attrs.get("title", "Rényi agent: behaviour against α"), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
