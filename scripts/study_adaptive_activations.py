"""Adaptive activations vs fixed ones: learning speed, accuracy, and robustness to input shifts.

Issue 4, part 4. On neurogym tasks, leaky rate RNNs (``neurosim.models.RateRNN``) with
a learned adaptive activation γ(x; n, s) (Geadah et al. 2020) — one shared ``(n, s)``
(``adaptive``) or one per unit (``adaptive_per_neuron``) — are compared with the fixed
``tanh``, ``relu`` and ``softplus`` at equal numbers of trained parameters (the hidden
size of each variant is chosen so its count is within 1 % of the fixed networks') and
equal seeds (the seed sets the weights, the training batches and noise, the held-out
trials and, for Geadah's initialisation, the draw of n₀).

Measured per task × activation × seed:

- the learning curve (held-out accuracy every ``eval_every`` steps) and the steps to
  the criterion (first evaluation ≥ ``CRITERION``);
- final accuracy on ``test_trials`` fresh trials, and the same trials under two shifts
  of the input statistics at test time: gain × 1.5 (``Perturbation("inputs", "scale",
  strength=-0.5)``) and the sinusoidal distortion x → x + a·sin(ωx) (a = 0.3, ω = π:
  monotone, fixes 0 and 1, bends everything between);
- the learned (n, s) of the adaptive networks.

Cells run on ``neurosim.sweep`` (a Dask LocalCluster, one torch thread per worker) and
are stored as they finish in ``<out>/cells.zarr``: an interrupted run resumes. Results
go to ``<out>/results.nc`` (xarray, netCDF), the figures to ``<out>/*.png``, and a table
with means and 95 % confidence intervals (Student t over seeds) is printed.

Usage::

    python scripts/study_adaptive_activations.py --quick   # 3 tasks x 5 seeds, <= 10 min on 2 cores
    python scripts/study_adaptive_activations.py           # 5 tasks x 10 seeds, longer training
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

import neurosim
import paradigms
from analyses import format_mean_ci, mean_ci
from neurosim.models import AdaptiveActivation, RateRNN

TASKS_QUICK = (
    "neurogym/PerceptualDecisionMaking-v0",
    "neurogym/DelayComparison-v0",
    "neurogym/yang19.dm1-v0",
)
TASKS_FULL = (*TASKS_QUICK, "neurogym/GoNogo-v0", "neurogym/ContextDecisionMaking-v0")
ACTIVATIONS = ("tanh", "relu", "softplus", "adaptive", "adaptive_per_neuron")
FIXED = ("tanh", "relu", "softplus")
CRITERION = 0.8
CONDITIONS = ("none", "gain x1.5", "sin")


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything that decides a cell's numbers (besides task, activation and seed)."""

    n_steps: int = 400
    eval_every: int = 10
    eval_trials: int = 256
    test_trials: int = 1000
    batch_size: int = 64
    lr: float = 1e-2
    tau: float = 200.0
    base_hidden: int = 64
    criterion: float = CRITERION
    gain: float = 1.5
    sin_amplitude: float = 0.3
    sin_frequency: float = math.pi
    adaptive_init: str = "geadah"


QUICK = Setup()
FULL = Setup(n_steps=1500, test_trials=2000)


# ---------------------------------------------------------------- parameter matching


def trainable_count(n_inputs: int, n_hidden: int, n_outputs: int, activation: str) -> int:
    """Trained parameters of ``RateRNN(n_inputs, n_hidden, n_outputs, activation=...)``.

    ``W_in, W_rec, b, W_out, b_out`` plus 2 (shared) or ``2·n_hidden`` (per neuron) for
    an adaptive activation (``h0`` is not learned).
    """
    extra = {"adaptive": 2, "adaptive_per_neuron": 2 * n_hidden}.get(activation, 0)
    return n_inputs * n_hidden + n_hidden**2 + n_hidden + n_outputs * n_hidden + n_outputs + extra


def matched_hidden(n_inputs: int, n_outputs: int, activation: str, base: int) -> tuple[int, int]:
    """The hidden size whose trained-parameter count is closest to the fixed networks' at
    ``base`` units, and that count."""
    ref = trainable_count(n_inputs, base, n_outputs, "tanh")
    best = min(
        range(max(1, base // 2), 2 * base + 1),
        key=lambda n: (abs(trainable_count(n_inputs, n, n_outputs, activation) - ref), n),
    )
    count = trainable_count(n_inputs, best, n_outputs, activation)
    if abs(count - ref) > 0.01 * ref:
        raise ValueError(f"no hidden size matches {ref} parameters within 1 % for {activation}")
    return best, count


def activation_spec(activation: str, seed: int, init: str) -> str | dict[str, Any]:
    """The ``activation`` argument of each variant (adaptive: Geadah's n₀ or a softplus start)."""
    if activation in FIXED:
        return activation
    per_neuron = activation == "adaptive_per_neuron"
    if init == "geadah":
        return {"name": "adaptive", "n": "geadah", "s": 0.0, "per_neuron": per_neuron, "seed": seed}
    return {"name": "adaptive", "n": 1.0, "s": 0.0, "per_neuron": per_neuron}


# ---------------------------------------------------------------- one cell


def run_cell(task: str, activation: str, seed: int, **setup: Any) -> xr.Dataset:
    """Train one network and measure it; a cell of the sweep (``task × activation × seed``)."""
    cfg = Setup(**setup)
    torch.set_num_threads(1)
    paradigm = paradigms.make(task)
    n_hidden, n_params = matched_hidden(
        paradigm.n_inputs, paradigm.n_outputs, activation, cfg.base_hidden
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the initial weights
        net = RateRNN(
            paradigm.n_inputs,
            n_hidden,
            paradigm.n_outputs,
            activation=activation_spec(activation, seed, cfg.adaptive_init),
            tau=cfg.tau,
            dt=paradigm.dt,
        )
    counted = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert counted == n_params, (counted, n_params)
    init_ns = _learned_ns(net)

    t0 = time.perf_counter()
    diverged = False
    try:
        result = neurosim.train(
            net,
            paradigm,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            eval_every=cfg.eval_every,
            eval_trials=cfg.eval_trials,
            seed=seed,
            device="cpu",
            quiet=True,
        )
        evals = result.history.dropna(subset=["performance"])
        steps = evals["step"].to_numpy(dtype=np.int64)
        curve = evals["performance"].to_numpy(dtype=np.float64)
    except neurosim.TrainingDivergedError:
        diverged = True  # the model is back at its last evaluated weights
        steps = np.arange(cfg.eval_every, cfg.n_steps + 1, cfg.eval_every)
        curve = np.full(len(steps), np.nan)
    train_time = time.perf_counter() - t0
    reached = np.flatnonzero(curve >= cfg.criterion)
    to_criterion = float(steps[reached[0]]) if len(reached) else np.nan

    accuracy = shifted_accuracy(net, paradigm, seed, cfg)
    data: dict[str, Any] = {
        "performance": ("eval_step", curve),
        "steps_to_criterion": to_criterion,
        "accuracy": ("condition", accuracy),
        "n_hidden": n_hidden,
        "n_params": n_params,
        "train_time_s": train_time,
        "diverged": diverged,
    }
    learned = _learned_ns(net)
    if activation == "adaptive":
        data |= {
            "n_shared": float(learned[0]),
            "s_shared": float(learned[1]),
            "n_shared_init": float(init_ns[0]),
        }
    elif activation == "adaptive_per_neuron":
        data |= {
            "n_unit": ("unit", learned[0]),
            "s_unit": ("unit", learned[1]),
            "n_unit_init": ("unit", init_ns[0]),
        }
    return xr.Dataset(
        {k: v if isinstance(v, tuple) else ((), v) for k, v in data.items()},
        coords={"eval_step": steps, "condition": list(CONDITIONS)},
    )


def _learned_ns(net: RateRNN) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(net.phi, AdaptiveActivation):
        return np.array(np.nan), np.array(np.nan)
    with torch.no_grad():
        return net.phi.n.double().numpy().copy(), net.phi.s.double().numpy().copy()


def shifted_accuracy(
    net: RateRNN, paradigm: paradigms.Paradigm, seed: int, cfg: Setup
) -> np.ndarray:
    """Accuracy on fresh trials: as drawn, at input gain ``cfg.gain`` and sinusoidally distorted."""
    trials = paradigm.batch(cfg.test_trials, np.random.default_rng([seed, 7_000]))
    gain = neurosim.Perturbation("inputs", "scale", strength=1.0 - cfg.gain, label=CONDITIONS[1])
    runs = neurosim.simulate_conditions(
        net, trials, [None, gain], seed=seed, keep_state=False, device="cpu", quiet=True
    )
    x = trials.inputs
    bent = x + cfg.sin_amplitude * np.sin(cfg.sin_frequency * x)
    distorted = dataclasses.replace(trials, inputs=bent.astype(np.float32))
    bent_run = neurosim.simulate_conditions(
        net, distorted, [None], seed=seed, keep_state=False, device="cpu", quiet=True
    )
    outputs = [runs["output"][0], runs["output"][1], bent_run["output"][0]]
    return np.array([float(np.mean(paradigm.performance(y, trials))) for y in outputs])


# ---------------------------------------------------------------- statistics and table


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per task × activation: means ± 95 % CI over seeds."""
    rows = []
    n_seeds = ds.sizes["seed"]
    for task in ds["task"].values:
        for act in ds["activation"].values:
            cell = ds.sel(task=task, activation=act)
            steps = cell["steps_to_criterion"].values
            st_m, st_h, st_k = mean_ci(steps)
            row = {
                "task": str(task).removeprefix("neurogym/"),
                "activation": str(act),
                "N": int(np.nanmax(cell["n_hidden"].values)),
                "params": int(np.nanmax(cell["n_params"].values)),
                f"steps to {ds.attrs.get('criterion', CRITERION)}": format_mean_ci(st_m, st_h, 0),
                "reached": f"{int(st_k)}/{n_seeds}",
            }
            for c, label in zip(CONDITIONS, ("acc", "acc gain", "acc sin"), strict=True):
                m, h, _ = mean_ci(cell["accuracy"].sel(condition=c).values)
                row[label] = format_mean_ci(float(m), float(h))
            row["train s"] = f"{np.nanmean(cell['train_time_s'].values):.1f}"
            rows.append(row)
    return pd.DataFrame(rows)


def ns_table(ds: xr.Dataset) -> pd.DataFrame:
    """Learned (n, s) per task: shared values (mean ± CI over seeds), per-neuron spread."""
    rows = []
    for task in ds["task"].values:
        cell = ds.sel(task=task)
        row: dict[str, Any] = {"task": str(task).removeprefix("neurogym/")}
        if "n_shared" in ds:
            for v in ("n_shared_init", "n_shared", "s_shared"):
                m, h, _ = mean_ci(cell[v].sel(activation="adaptive").values)
                digits = 4 if v.startswith("s") else 2
                row[v.replace("_shared", "") + " (shared)"] = format_mean_ci(
                    float(m), float(h), digits
                )
        if "n_unit" in ds:
            pn = cell.sel(activation="adaptive_per_neuron")
            n, s = pn["n_unit"].values.ravel(), pn["s_unit"].values.ravel()
            n, s = n[np.isfinite(n)], s[np.isfinite(s)]
            row["n per-neuron median [5-95 %]"] = (
                f"{np.median(n):.2f} [{np.percentile(n, 5):.2f}, {np.percentile(n, 95):.2f}]"
            )
            row["s per-neuron median [5-95 %]"] = (
                f"{np.median(s):.4f} [{np.percentile(s, 5):.4f}, {np.percentile(s, 95):.4f}]"
            )
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- figures

_COLORS = {
    "tanh": "tab:blue",
    "relu": "tab:orange",
    "softplus": "tab:green",
    "adaptive": "tab:red",
    "adaptive_per_neuron": "tab:purple",
}


def plot_all(ds: xr.Dataset, out: Path) -> list[Path]:
    """Learning curves, steps to criterion, accuracy under shift, learned (n, s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [str(t) for t in ds["task"].values]
    acts = [str(a) for a in ds["activation"].values]
    short = [t.removeprefix("neurogym/") for t in tasks]
    paths = []

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task, name in zip(axes[0], tasks, short, strict=True):
        steps = ds["eval_step"].values
        for act in acts:
            m, h, _ = mean_ci(ds["performance"].sel(task=task, activation=act).values, axis=0)
            ax.plot(steps, m, color=_COLORS[act], label=act, lw=1.4)
            ax.fill_between(steps, m - h, m + h, color=_COLORS[act], alpha=0.18, lw=0)
        ax.axhline(float(ds.attrs["criterion"]), color="0.5", ls=":", lw=1)
        ax.set(title=name, xlabel="gradient step", ylabel="held-out accuracy")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Learning curves (mean, 95 % CI over seeds)")
    paths.append(_save(fig, out / "learning_curves.png"))

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    cap = float(ds["eval_step"].values.max())
    for ax, task, name in zip(axes[0], tasks, short, strict=True):
        for i, act in enumerate(acts):
            v = ds["steps_to_criterion"].sel(task=task, activation=act).values
            m, h, k = mean_ci(v)
            jitter = np.linspace(-0.15, 0.15, len(v))
            ax.scatter(
                i + jitter,
                np.where(np.isfinite(v), v, cap),
                s=12,
                color=_COLORS[act],
                marker="o",
                alpha=0.5,
            )
            missed = ~np.isfinite(v)
            if missed.any():
                ax.scatter(
                    (i + jitter)[missed], np.full(missed.sum(), cap), s=30, marker="x", color="k"
                )
            if np.isfinite(m):
                ax.errorbar(
                    i + 0.3,
                    m,
                    yerr=h if np.isfinite(h) else None,
                    fmt="s",
                    color=_COLORS[act],
                    capsize=3,
                )
        ax.set_xticks(range(len(acts)), acts, rotation=30, ha="right", fontsize=8)
        ax.set(title=name, ylabel=f"steps to accuracy ≥ {float(ds.attrs['criterion'])}")
    fig.suptitle("Steps to criterion (dots: seeds, x: not reached; squares: mean ± 95 % CI)")
    paths.append(_save(fig, out / "steps_to_criterion.png"))

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    conds = [str(c) for c in ds["condition"].values]
    width = 0.8 / len(acts)
    for ax, task, name in zip(axes[0], tasks, short, strict=True):
        for i, act in enumerate(acts):
            m, h, _ = mean_ci(ds["accuracy"].sel(task=task, activation=act).values, axis=0)
            x = np.arange(len(conds)) + (i - (len(acts) - 1) / 2) * width
            ax.bar(x, m, width, yerr=h, color=_COLORS[act], label=act, capsize=2)
        ax.set_xticks(range(len(conds)), conds)
        ax.set(title=name, ylabel="test accuracy", ylim=(0, 1.05))
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Accuracy under input shifts at test time (mean, 95 % CI over seeds)")
    paths.append(_save(fig, out / "shift_accuracy.png"))

    if "n_unit" in ds or "n_shared" in ds:
        fig, axes = plt.subplots(3, len(tasks), figsize=(4.2 * len(tasks), 9.0), squeeze=False)
        for j, task in enumerate(tasks):
            cell = ds.sel(task=task)
            ax_n, ax_s, ax_ns = axes[0, j], axes[1, j], axes[2, j]
            if "n_unit" in ds:
                pn = cell.sel(activation="adaptive_per_neuron")
                n, s = pn["n_unit"].values.ravel(), pn["s_unit"].values.ravel()
                n0 = pn["n_unit_init"].values.ravel()
                ok = np.isfinite(n)
                ax_n.hist(n0[ok], bins=30, color="0.7", label="initial (per neuron)")
                ax_n.hist(
                    n[ok],
                    bins=30,
                    color=_COLORS["adaptive_per_neuron"],
                    alpha=0.7,
                    label="learned (per neuron)",
                )
                ax_s.hist(s[ok], bins=30, color=_COLORS["adaptive_per_neuron"], alpha=0.7)
                ax_ns.scatter(
                    n[ok],
                    s[ok],
                    s=5,
                    alpha=0.4,
                    color=_COLORS["adaptive_per_neuron"],
                    label="per neuron",
                )
            if "n_shared" in ds:
                sh = cell.sel(activation="adaptive")
                n, s = sh["n_shared"].values, sh["s_shared"].values
                for v in n:
                    ax_n.axvline(v, color=_COLORS["adaptive"], lw=1)
                for v in s:
                    ax_s.axvline(v, color=_COLORS["adaptive"], lw=1)
                ax_ns.scatter(
                    n, s, s=40, marker="*", color=_COLORS["adaptive"], label="shared (one per seed)"
                )
            ax_n.set(title=short[j], xlabel="n", ylabel="units")
            ax_s.set(xlabel="s", ylabel="units")
            ax_ns.set(xlabel="n", ylabel="s")
        axes[0, 0].legend(fontsize=7)
        axes[2, 0].legend(fontsize=7)
        fig.suptitle("Learned (n, s): per-neuron histograms, shared values as lines/stars")
        paths.append(_save(fig, out / "learned_n_s.png"))
    return paths


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ---------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 tasks x 5 seeds, 400 steps")
    p.add_argument("--seeds", type=int, help="number of seeds (default 5 quick, 10 full)")
    p.add_argument("--tasks", nargs="+", help="paradigm ids (default: the mode's tasks)")
    p.add_argument("--steps", type=int, help="gradient steps per network")
    p.add_argument(
        "--adaptive-init",
        choices=("geadah", "softplus"),
        default="geadah",
        help="adaptive n0 = 5 + 2 U(0,1), s0 = 0 (Geadah) or n0 = 1, s0 = 0",
    )
    p.add_argument("--out", type=Path, help="output folder (default out/study_adaptive[/quick])")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true", help="discard a store of another setup")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> xr.Dataset:
    args = _parse(argv)
    setup = QUICK if args.quick else FULL
    if args.steps:
        setup = dataclasses.replace(setup, n_steps=args.steps)
    setup = dataclasses.replace(setup, adaptive_init=args.adaptive_init)
    tasks = tuple(args.tasks or (TASKS_QUICK if args.quick else TASKS_FULL))
    seeds = list(range(args.seeds or (5 if args.quick else 10)))
    out = args.out or Path("out/study_adaptive") / ("quick" if args.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    grid = {"task": list(tasks), "activation": list(ACTIVATIONS), "seed": seeds}
    fn = functools.partial(run_cell, **dataclasses.asdict(setup))
    print(
        f"{len(tasks)} tasks x {len(ACTIVATIONS)} activations x {len(seeds)} seeds, "
        f"{setup.n_steps} steps each, {args.workers} workers -> {out}",
        flush=True,
    )
    t0 = time.perf_counter()
    ds = neurosim.sweep(
        fn,
        grid,
        store=out / "cells.zarr",
        quiet=args.quiet,
        n_workers=args.workers,
        overwrite=args.overwrite,
    )
    wall = time.perf_counter() - t0
    ds = ds.drop_vars("complete").assign_coords(complete=ds["complete"].astype(np.int8))
    ds.attrs = {
        **{k: str(v) for k, v in ds.attrs.items()},
        "setup": json.dumps(dataclasses.asdict(setup)),
        "criterion": setup.criterion,
        "conditions": json.dumps(
            {
                "none": "trials as drawn",
                "gain x1.5": f"Perturbation('inputs', 'scale', strength={1 - setup.gain:g})",
                "sin": f"x + {setup.sin_amplitude:g}*sin({setup.sin_frequency:g}*x)",
            }
        ),
        "wall_s": round(wall, 1),
        "versions": json.dumps(
            {
                "python": sys.version.split()[0],
                **{m: _version(m) for m in ("neurosim", "torch", "numpy", "neurogym")},
            }
        ),
    }
    path = out / "results.nc"
    tmp = path.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, path)

    figures = plot_all(ds, out)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(
            f"\nMeans ± 95 % CI over {len(seeds)} seeds ({setup.n_steps} steps, "
            f"criterion {setup.criterion}, adaptive init {setup.adaptive_init}):"
        )
        print(summary_table(ds).to_string(index=False))
        print("\nLearned (n, s):")
        print(ns_table(ds).to_string(index=False))
    print(f"\nwrote {path} and {', '.join(p.name for p in figures)} in {out} ({wall:.0f} s)")
    return ds


if __name__ == "__main__":
    main()
