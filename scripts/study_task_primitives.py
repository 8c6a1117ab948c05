"""Task primitives vs independent, multi-task and random-module networks on the yang19 corpus.

Issue 4, part 3 (Marton, Lajoie & Rajan 2021, arXiv:2105.14108). On the nine tasks of
``paradigms.YANG19_CORPUS`` (rtgo, rtanti, dlyanti, dm2, ctxdm1, multidm, dlydm1, dnms,
dmc), with the same seeds and the same training budget per task (``n_steps`` × 64
trials), four approaches of ``K · module_size`` = 160 units each:

(a) ``primitives``: a 5-module ``ModularRNN`` whose modules are recurrent networks
    pre-trained on the five primitive tasks (go, dlygo, anti, dm1, dms), frozen; per task
    only fresh input weights, readout and the five module gains are trained
    (``neurosim.models.pretrain_primitives`` + ``adapt_to_task``);
(b) ``independent``: one fully trained ``RateRNN`` per task;
(c) ``multitask``: one ``RateRNN`` with rule inputs (Yang et al. 2019) trained on
    ``multitask/yang19-corpus`` for ``9 · n_steps`` steps of mixed 64-trial batches (the
    same number of trials), evaluated per task through ``corpus.task_paradigm(task)``;
(d) ``random_modules``: as (a) but the frozen modules are the primitives' *initial*
    (untrained) weights (``random_modules``).

Measured per approach × task × seed: accuracy by Yang's rule on ``test_trials`` held-out
trials (the same trials for every approach) and robustness curves
(``analyses.compute_robustness``; the same trials and lesioned subsets for every
approach): input noise on the 33 task channels, lesions of 10–50 % of the recurrent
units, static recurrent-weight noise (SD relative to the RMS of the *existing*
recurrent weights: the modular nets' zero inter-module blocks are not counted) and
silencing one module (modular) or one block of ``module_size`` units (``RateRNN``),
averaged over the five modules / blocks.

Both stages run on ``neurosim.sweep`` (a Dask LocalCluster, one torch thread per
worker) with resumable zarr stores under ``<out>/``; results go to
``<out>/primitives.nc`` (pre-trained weights and accuracies) and ``<out>/results.nc``,
figures to ``<out>/accuracy_per_task.png`` and ``<out>/robustness.png``, tables (means
± 95 % CI, Student t over seeds) to ``<out>/table_accuracy.csv`` and
``<out>/table_robustness.csv``, printed as markdown.

Usage::

    python scripts/study_task_primitives.py --quick   # 2 seeds, 300 steps/task, <= 10 min on 2 cores
    python scripts/study_task_primitives.py           # 5 seeds, 1000 steps/task (hours on CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

import analyses
import neurosim
import paradigms
from analyses import format_mean_ci, mean_ci
from neurosim import Perturbation
from neurosim._train import seeded_torch
from neurosim.models import ModularRNN, RateRNN, adapt_to_task, pretrain_primitives, random_modules
from paradigms import YANG19_CORPUS, YANG19_PRIMITIVES

APPROACHES = ("primitives", "independent", "multitask", "random_modules")
LABELS = {
    "primitives": "(a) modular + primitives",
    "independent": "(b) independent RateRNN",
    "multitask": "(c) multi-task RateRNN",
    "random_modules": "(d) modular, random modules",
}
COLORS = {
    "primitives": "tab:red",
    "independent": "tab:blue",
    "multitask": "tab:green",
    "random_modules": "0.45",
}
KINDS = ("input_noise", "lesion", "weight_noise", "silencing")
KIND_TITLES = {
    "input_noise": "input noise (SD, task channels)",
    "lesion": "recurrent units lesioned (fraction)",
    "weight_noise": "recurrent weight noise (SD / RMS)",
    "silencing": "one module / block silenced",
}


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything that decides the numbers (besides the seeds)."""

    n_steps: int = 300
    primitive_steps: int = 500
    batch_size: int = 64
    lr: float = 1e-2
    module_size: int = 32
    tau: float = 100.0
    test_trials: int = 500
    robustness_trials: int = 128
    robustness_seeds: int = 2
    input_noise: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5, 1.0)
    lesion: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    weight_noise: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    device: str = "cpu"


QUICK = Setup()
FULL = Setup(
    n_steps=1000, primitive_steps=2000, test_trials=1000, robustness_trials=256, robustness_seeds=3
)


def _setup(setup: dict[str, Any]) -> Setup:
    return Setup(**{k: tuple(v) if isinstance(v, list) else v for k, v in setup.items()})


def _seed(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint32)[0] >> 1)


# ---------------------------------------------------------------- stage 1: primitives


def pretrain_cell(seed: int, **setup: Any) -> xr.Dataset:
    """Pre-train the five primitives for ``seed``; their recurrent blocks and accuracies."""
    cfg = _setup(setup)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    net = pretrain_primitives(
        YANG19_PRIMITIVES,
        module_size=cfg.module_size,
        tau=cfg.tau,
        n_steps=cfg.primitive_steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=seed,
        device=cfg.device,
        quiet=True,
    )
    blocks = np.stack([_block(net, m) for m in net.module_names])
    bias = np.stack([net.b.detach()[net.module_slices[m]].numpy() for m in net.module_names])
    return xr.Dataset(
        {
            "w_rec": (("primitive", "post", "pre"), blocks),
            "bias": (("primitive", "post"), bias),
            "accuracy": ("primitive", net.primitives["accuracy"].to_numpy(np.float64)),
            "pretrain_seconds": ((), time.perf_counter() - t0),
        },
        coords={"primitive": list(net.module_names)},
    )


def _block(net: ModularRNN, name: str) -> np.ndarray:
    sl = net.module_slices[name]
    return net.w_rec.detach()[sl, sl].numpy()


def load_primitives(path: str, seed: int, cfg: Setup) -> ModularRNN:
    """The pre-trained network of ``seed`` rebuilt from ``primitives.nc``."""
    net = random_modules(YANG19_PRIMITIVES, module_size=cfg.module_size, tau=cfg.tau, seed=seed)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        cell = ds.sel(seed=seed).load()
    with torch.no_grad():
        for name in net.module_names:
            sl = net.module_slices[name]
            net.w_rec[sl, sl] = torch.from_numpy(cell["w_rec"].sel(primitive=name).values)
            net.b[sl] = torch.from_numpy(cell["bias"].sel(primitive=name).values)
    net.primitives["accuracy"] = cell["accuracy"].sel(primitive=list(net.module_names)).values
    return net


# ---------------------------------------------------------------- stage 2: one approach


def approach_cell(approach: str, seed: int, primitives_path: str, **setup: Any) -> xr.Dataset:
    """Train approach ``approach`` on the nine corpus tasks for ``seed`` and measure it."""
    cfg = _setup(setup)
    torch.set_num_threads(1)
    n_units = cfg.module_size * len(YANG19_PRIMITIVES)
    train_kw = {
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "eval_trials": 64,
        "device": cfg.device,
        "quiet": True,
    }
    parts = []
    if approach == "multitask":
        corpus = paradigms.make("multitask/yang19-corpus")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(seed, 1, 99))
            net = RateRNN(corpus.n_inputs, n_units, corpus.n_outputs, tau=cfg.tau, dt=corpus.dt)
        steps = len(YANG19_CORPUS) * cfg.n_steps
        t0 = time.perf_counter()
        neurosim.train(net, corpus, n_steps=steps, eval_every=steps, seed=_seed(seed, 2, 99),
                       **train_kw)  # fmt: skip
        seconds = (time.perf_counter() - t0) / len(YANG19_CORPUS)
        total = _trained(net)
        for k, task in enumerate(YANG19_CORPUS):
            view = corpus.task_paradigm(task)
            parts.append(_measure(net, view, k, seed, cfg, total / len(YANG19_CORPUS), seconds))
    else:
        base = None
        if approach == "primitives":
            base = load_primitives(primitives_path, seed, cfg)
        elif approach == "random_modules":
            base = random_modules(
                YANG19_PRIMITIVES, module_size=cfg.module_size, tau=cfg.tau, seed=seed
            )
        elif approach != "independent":
            raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
        for k, task_id in enumerate(YANG19_CORPUS):
            task = paradigms.make(task_id)
            if base is not None:
                net = adapt_to_task(base, task, seed=_seed(seed, 1, k))
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(_seed(seed, 1, k))
                    net = RateRNN(task.n_inputs, n_units, task.n_outputs, tau=cfg.tau, dt=task.dt)
            t0 = time.perf_counter()
            neurosim.train(net, task, n_steps=cfg.n_steps, eval_every=cfg.n_steps,
                           seed=_seed(seed, 2, k), **train_kw)  # fmt: skip
            seconds = time.perf_counter() - t0
            parts.append(_measure(net, task, k, seed, cfg, _trained(net), seconds))
    return xr.concat(parts, dim="task").assign_coords(task=list(YANG19_CORPUS))


def _trained(net: torch.nn.Module) -> int:
    n = sum(p.numel() for p in net.parameters() if p.requires_grad)
    if isinstance(net, ModularRNN):
        assert n == int(net.parameter_counts(trainable_only=True).loc["total", "total"])
    return n


def _measure(
    net: neurosim.models.RecurrentModel,
    task: paradigms.Paradigm,
    k: int,
    seed: int,
    cfg: Setup,
    trained: float,
    seconds: float,
) -> xr.Dataset:
    """Held-out accuracy and the four robustness curves of one trained network on task ``k``."""
    net = net.cpu().eval()
    test = task.batch(cfg.test_trials, np.random.default_rng([seed, 7, k]))
    acc = neurosim.evaluate(net, task, test, noise=True, generator=seeded_torch(seed, 8, k))
    seeds = [_seed(seed, 9, k, r) for r in range(cfg.robustness_seeds)]

    def curve(perts: list[Perturbation], strengths) -> np.ndarray:
        rob = analyses.compute_robustness(
            net, task, perts, list(strengths), seeds, n_trials=cfg.robustness_trials,
            device=cfg.device, quiet=True,
        )  # fmt: skip
        return rob["performance"].mean("seed").values, float(rob["unperturbed"].mean())

    n_task_inputs = paradigms.make(YANG19_CORPUS[k]).n_inputs
    inputs = [Perturbation("inputs", "noise", units=tuple(range(n_task_inputs)), label="input")]
    noise_in, base = curve(inputs, cfg.input_noise)
    lesion, _ = curve([Perturbation("state", "lesion", label="lesion")], cfg.lesion)
    live = 1.0
    if isinstance(net, ModularRNN):  # noise SD relative to the RMS of the existing weights
        live = float(np.sqrt(net.mask.numel() / net.mask.sum().item()))
    weights = [Perturbation("weights", "noise", label="weights")]
    w_noise, _ = curve(weights, [s * live for s in cfg.weight_noise])
    size, n_blocks = cfg.module_size, len(YANG19_PRIMITIVES)
    if isinstance(net, ModularRNN):
        silence = [Perturbation("module", "lesion", module=m) for m in net.module_names]
    else:
        silence = [
            Perturbation(
                "units", "lesion", units=tuple(range(i * size, (i + 1) * size)), label=f"block {i}"
            )  # fmt: skip
            for i in range(n_blocks)
        ]
    silenced, _ = curve(silence, [1.0])
    return xr.Dataset(
        {
            "accuracy": ((), acc),
            "trained_params": ((), float(trained)),
            "train_seconds": ((), seconds),
            "unperturbed": ((), base),
            "input_noise": ("input_noise_sd", noise_in[0]),
            "lesion": ("lesion_fraction", lesion[0]),
            "weight_noise": ("weight_noise_sd", w_noise[0]),
            "silencing": ("silenced", silenced[:, 0]),
        },
        coords={
            "input_noise_sd": list(cfg.input_noise),
            "lesion_fraction": list(cfg.lesion),
            "weight_noise_sd": list(cfg.weight_noise),
            "silenced": np.arange(n_blocks),
        },
    )


# ---------------------------------------------------------------- statistics and tables


def _ci_text(values: np.ndarray) -> str:
    """Mean ± 95 % CI over the last axis, two decimals."""
    m, h, _ = mean_ci(values)
    return format_mean_ci(float(m), float(h), 2)


def _short(task: str) -> str:
    return task.removeprefix("neurogym/yang19.").removesuffix("-v0")


def accuracy_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per approach: trained parameters per task, accuracy per task and overall."""
    rows = []
    for a in ds["approach"].values:
        cell = ds.sel(approach=a)
        acc = cell["accuracy"].transpose("seed", "task").values
        params = cell["trained_params"].values
        row = {
            "approach": LABELS[str(a)],
            "trained params / task": f"{np.nanmean(params):.0f}",
        }
        if str(a) == "multitask":
            row["trained params / task"] += f" ({np.nanmean(params) * ds.sizes['task']:.0f} total)"
        row["mean (9 tasks)"] = _ci_text(acc.mean(1))
        for j, t in enumerate(ds["task"].values):
            row[_short(str(t))] = _ci_text(acc[:, j])
        row["train s / task"] = f"{np.nanmean(cell['train_seconds'].values):.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per approach: accuracy averaged over tasks and the non-zero strengths."""
    rows = []
    for a in ds["approach"].values:
        cell = ds.sel(approach=a)
        row = {
            "approach": LABELS[str(a)],
            "unperturbed": _ci_text(cell["unperturbed"].mean("task").values),
        }
        for kind, dim in _dims(ds).items():
            v = cell[kind]
            if dim is not None:
                v = v.where(v[dim] > 0, drop=True).mean(dim)
            else:
                v = v.mean("silenced")
            row[_kind_column(ds, kind)] = _ci_text(v.mean("task").transpose("seed").values)
        rows.append(row)
    return pd.DataFrame(rows)


def _dims(ds: xr.Dataset) -> dict[str, str | None]:
    return {
        "input_noise": "input_noise_sd",
        "lesion": "lesion_fraction",
        "weight_noise": "weight_noise_sd",
        "silencing": None,
    }


def _kind_column(ds: xr.Dataset, kind: str) -> str:
    dim = _dims(ds)[kind]
    if dim is None:
        return "one module silenced"
    s = [f"{v:g}" for v in ds[dim].values if v > 0]
    return f"{kind.replace('_', ' ')} ({s[0]}–{s[-1]})"


markdown = analyses.markdown_table


# ---------------------------------------------------------------- figures


def plot_all(ds: xr.Dataset, out: Path) -> list[Path]:
    """Accuracy per task by approach; robustness curves per perturbation type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    approaches = [str(a) for a in ds["approach"].values]
    tasks = [_short(str(t)) for t in ds["task"].values]
    width = 0.8 / len(approaches)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, a in enumerate(approaches):
        acc = ds["accuracy"].sel(approach=a).transpose("seed", "task").values
        m, h, _ = mean_ci(acc, axis=0)
        x = np.arange(len(tasks)) + (i - (len(approaches) - 1) / 2) * width
        ax.bar(x, m, width, yerr=np.nan_to_num(h), color=COLORS[a], label=LABELS[a], capsize=2)
        for row in acc:
            ax.plot(x, row, ".", color="k", ms=2.5, alpha=0.6)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(ylabel="accuracy (Yang's rule)", ylim=(0, 1.05))
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title(f"held-out accuracy, mean ± 95 % CI over {ds.sizes['seed']} seeds (dots: seeds)",
                 fontsize=9, pad=22)  # fmt: skip
    paths = [_save(fig, out / "accuracy_per_task.png")]

    fig, axes = plt.subplots(1, len(KINDS), figsize=(4.0 * len(KINDS), 3.4))
    for ax, kind in zip(axes, KINDS, strict=True):
        dim = _dims(ds)[kind]
        for i, a in enumerate(approaches):
            per_seed = ds[kind].sel(approach=a).mean("task")
            if dim is None:
                v = per_seed.mean("silenced").values
                m, h, _ = mean_ci(v)
                ax.bar(i, m, 0.7, yerr=np.nan_to_num(h), color=COLORS[a], capsize=3)
                ax.plot(np.full(len(v), i), v, ".", color="k", ms=3)
                continue
            v = per_seed.transpose("seed", dim).values
            m, h, _ = mean_ci(v, axis=0)
            x = ds[dim].values
            ax.plot(x, m, "o-", ms=3, color=COLORS[a], label=LABELS[a])
            ax.fill_between(x, m - np.nan_to_num(h), m + np.nan_to_num(h), color=COLORS[a],
                            alpha=0.15, lw=0)  # fmt: skip
        if dim is None:
            ax.set_xticks(range(len(approaches)), [LABELS[a][:3] for a in approaches])
        ax.set(title=KIND_TITLES[kind], ylabel="accuracy (mean over 9 tasks)", ylim=(0, 1.02))
        ax.title.set_fontsize(9)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"robustness, mean ± 95 % CI over {ds.sizes['seed']} seeds", fontsize=10)
    paths.append(_save(fig, out / "robustness.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- main


def _write(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, path)


def _clean(ds: xr.Dataset, setup: Setup, wall: float) -> xr.Dataset:
    ds = ds.drop_vars("complete").assign_coords(complete=ds["complete"].astype(np.int8))
    ds.attrs = {
        **{k: str(v) for k, v in ds.attrs.items()},
        "setup": json.dumps(dataclasses.asdict(setup)),
        "wall_s": round(wall, 1),
        "versions": json.dumps(
            {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__}
        ),
    }
    return ds


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 300 steps per task")
    p.add_argument("--seeds", type=int, help="number of seeds (default 2 quick, 5 full)")
    p.add_argument("--steps", type=int, help="training steps per task")
    p.add_argument("--primitive-steps", type=int, help="pre-training steps per primitive")
    p.add_argument("--device", default="cpu", help="where networks train and run (cpu, cuda)")
    p.add_argument("--out", type=Path, help="output folder (default out/study_primitives/<mode>)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true", help="discard stores of another setup")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> xr.Dataset:
    args = _parse(argv)
    setup = QUICK if args.quick else FULL
    setup = dataclasses.replace(
        setup,
        n_steps=args.steps or setup.n_steps,
        primitive_steps=args.primitive_steps or setup.primitive_steps,
        device=args.device,
    )
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    out = args.out or Path("out/study_primitives") / ("quick" if args.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    fixed = dataclasses.asdict(setup)
    print(
        f"{len(APPROACHES)} approaches x {len(YANG19_CORPUS)} tasks x {len(seeds)} seeds; "
        f"{setup.n_steps} steps x {setup.batch_size} trials per task, primitives "
        f"{setup.primitive_steps} steps; {args.workers} workers -> {out}",
        flush=True,
    )
    t0 = time.perf_counter()
    prim = neurosim.sweep(
        functools.partial(pretrain_cell, **fixed),
        {"seed": seeds},
        store=out / "primitives.zarr",
        quiet=args.quiet,
        n_workers=args.workers,
        overwrite=args.overwrite,
    )
    prim = _clean(prim, setup, time.perf_counter() - t0)
    prim_path = out / "primitives.nc"
    _write(prim, prim_path)
    ds = neurosim.sweep(
        functools.partial(approach_cell, primitives_path=str(prim_path.resolve()), **fixed),
        {"approach": list(APPROACHES), "seed": seeds},
        store=out / "cells.zarr",
        quiet=args.quiet,
        n_workers=args.workers,
        overwrite=args.overwrite,
    )
    wall = time.perf_counter() - t0
    ds = _clean(ds, setup, wall)
    ds["primitive_accuracy"] = prim["accuracy"]
    path = out / "results.nc"
    _write(ds, path)

    figures = plot_all(ds, out)
    acc, rob = accuracy_table(ds), robustness_table(ds)
    acc.to_csv(out / "table_accuracy.csv", index=False)
    rob.to_csv(out / "table_robustness.csv", index=False)
    m, h, _ = mean_ci(prim["accuracy"].transpose("seed", "primitive").values, axis=0)
    print("\nPrimitive networks (standalone, held-out accuracy):")
    print(
        ", ".join(
            f"{p} {format_mean_ci(a, b, 2)}"
            for p, a, b in zip(prim["primitive"].values, m, h, strict=True)
        )
    )
    print(f"\nAccuracy (Yang's rule, {setup.test_trials} held-out trials per task and seed; "
          f"mean ± 95 % CI over {len(seeds)} seeds):\n")  # fmt: skip
    print(markdown(acc))
    print("\nRobustness (accuracy averaged over the 9 tasks and the non-zero strengths):\n")
    print(markdown(rob))
    print(f"\nwrote {path}, {prim_path}, tables and {', '.join(p.name for p in figures)} "
          f"in {out} ({wall:.0f} s)")  # fmt: skip
    return ds


if __name__ == "__main__":
    main()
