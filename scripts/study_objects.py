"""Object discovery by phase synchrony: the Complex AutoEncoder and its contrastive version.

Issue 9 (Löwe, Lippe, Rudolph & Welling 2022; Stanić, Gopalakrishnan, Irie & Schmidhuber
2023, arXiv:2305.15001). For each seed a :class:`ComplexAutoEncoder` is trained with
``train_object_model`` on

- ``scenes/2shapes`` and ``scenes/3shapes`` (greyscale): the plain CAE (reconstruction MSE);
- a coloured paradigm (``scenes/tetrominoes``): the plain CAE against the contrastive CAE
  (the same network plus the CtCAE contrastive phase loss, weight 1e-4, τ = 0.05). On colour
  both read the reconstruction straight off the output magnitudes (no 1×1 convolution and
  sigmoid, as the CtCAE's "CAE++" base): with Löwe et al.'s sigmoid output, whose initial
  output is >= 0.5 everywhere, the output layer's ReLU died within a few hundred steps on
  Tetrominoes in every quick run (constant reconstruction, MSE 0.1185, ARI 0 for both
  variants); ``color_output_conv`` / ``color_output_sigmoid`` switch it back.

Each trained model is scored on ``test_images`` held-out scenes (the same for every model
of a paradigm; drawn with seed 12345): reconstruction MSE, and the object readout of Löwe
et al. — per-pixel features ``(m cos φ, m sin φ)`` of the output layer (magnitudes clipped
at 0.1 and rescaled), k-means into objects + 1 clusters with overlaps left out
(``analyses.compute_object_discovery``), ARI-FG (objects' pixels only) and ARI-BG (all
pixels, background included) — plus the phase synchrony within vs between objects
(``analyses.phase_synchrony``). Means ± standard errors over seeds go to
``<out>/summary.json`` and ``<out>/table.md``; figures (input, reconstruction, phase map
with hue = phase and value = magnitude, clusters, true labels) of the first seed's model on
four test scenes go to ``<out>/scenes_<paradigm>_<variant>.png``, training curves to
``<out>/training.png``.

Runs go to a pool of ``--workers`` processes (one torch thread each).

Usage::

    python scripts/study_objects.py --quick   # 3 seeds, small CAE; <= 15 min on 2 CPU cores
    python scripts/study_objects.py           # 5 seeds, Löwe et al.'s CAE, 30k steps (GPU)
    python scripts/study_objects.py --quick --paradigms scenes/2shapes --seeds 0 --grey-steps 12000

Quick mode is a smoke-scale run: 3000 steps of batch 32 (Löwe et al. train 100k of 64). On
``scenes/2shapes`` the CAE first learns to reconstruct the large square; the small triangle
(``h²`` pixels, 16–49) stays dark and in the background cluster until a sudden transition,
after about 10k steps of batch 32 in our runs, from which on it is reconstructed in its own
phase (ARI-FG near 1). The quick numbers measure the state before that transition.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

TEST_SEED = 12345


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything that decides the numbers (besides the seeds)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    paradigms: tuple[str, ...] = ("scenes/2shapes", "scenes/3shapes", "scenes/tetrominoes")
    channels: tuple[int, ...] = (16, 16, 32, 32, 32)
    strides: tuple[int, ...] = (2, 1, 2, 1, 2)
    linear_dim: int = 64
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 500
    grey_steps: int = 3000
    color_steps: int = 1500
    color_output_conv: bool = False
    color_output_sigmoid: bool = False
    contrastive_weight: float = 1e-4
    temperature: float = 0.05
    phase_features: str = "angle"
    magnitude_clip: float = 0.1
    eval_every: int = 500
    eval_images: int = 128
    test_images: int = 512
    device: str = "cpu"


QUICK = Setup()
FULL = Setup(
    seeds=(0, 1, 2, 3, 4),
    channels=(32, 32, 64, 64, 64),
    batch_size=64,
    grey_steps=30000,
    color_steps=30000,
    eval_every=2000,
    eval_images=256,
    test_images=1000,
    device="auto",
)


def _threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import torch

    torch.set_num_threads(1)


def _paradigm(pid: str):
    import paradigms

    if pid not in paradigms.available():  # until paradigms/__init__ registers the scenes
        import paradigms._scenes

        paradigms._scenes._register()
    return paradigms.make(pid)


def _scorer(clip: float):
    from analyses._objects import compute_object_discovery

    def score(magnitude, phase, labels):
        res = compute_object_discovery(magnitude, phase, labels, magnitude_clip=clip)
        return {"ari_fg": res.attrs["ari_fg_mean"], "ari_bg": res.attrs["ari_bg_mean"]}

    return score


def run_one(pid: str, variant: str, seed: int, setup: dict[str, Any], out: str) -> dict[str, Any]:
    """Train one model and score it on the test scenes (runs in a worker process)."""
    _threads()
    import torch

    from analyses._objects import compute_object_discovery, phase_synchrony
    from neurosim._object_training import scene_tensors, train_object_model
    from neurosim.models._cae import ComplexAutoEncoder, object_features

    cfg = Setup(**{k: tuple(v) if isinstance(v, list) else v for k, v in setup.items()})
    task = _paradigm(pid)
    grey = task.image_shape[0] == 1
    model = ComplexAutoEncoder(
        task.image_shape,
        channels=cfg.channels,
        strides=cfg.strides,
        linear_dim=cfg.linear_dim,
        output_conv=True if grey else cfg.color_output_conv,
        output_sigmoid=True if grey else cfg.color_output_sigmoid,
        seed=1000 + seed,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    result = train_object_model(
        model,
        task,
        n_steps=cfg.grey_steps if grey else cfg.color_steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        seed=seed,
        contrastive=variant == "contrastive",
        contrastive_weight=cfg.contrastive_weight,
        temperature=cfg.temperature,
        phase_features=cfg.phase_features,
        eval_every=cfg.eval_every,
        eval_images=cfg.eval_images,
        device=cfg.device,
        quiet=True,
        scorer=_scorer(cfg.magnitude_clip),
    )
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    x, labels = scene_tensors(task.batch(cfg.test_images, TEST_SEED))
    model.eval()
    magnitude, phase = object_features(model, x)
    with torch.no_grad():
        rec = torch.cat(
            [
                model(x[i : i + 256].to(next(model.parameters()).device)).reconstruction.cpu()
                for i in range(0, len(x), 256)
            ]
        )
    mse = float(((rec - x) ** 2).mean())
    res = compute_object_discovery(magnitude, phase, labels, magnitude_clip=cfg.magnitude_clip)
    sync = phase_synchrony(phase, magnitude, labels[:, None])
    if seed == cfg.seeds[0]:
        np.savez_compressed(
            Path(out) / f"scenes_{pid.split('/')[-1]}_{variant}.npz",
            images=x[:4].numpy(),
            reconstructions=rec[:4].numpy(),
            magnitude=magnitude[:4],
            phase=phase[:4],
            clusters=res["cluster"].values[:4],
            labels=labels[:4],
        )
    hist = result.history
    evals = hist[hist["eval_mse"].notna()]
    return {
        "paradigm": pid,
        "variant": variant,
        "seed": seed,
        "ari_fg": _finite_mean(res["ari_fg"].values),
        "ari_bg": _finite_mean(res["ari_bg"].values),
        "mse": mse,
        "sync_within": _finite_mean(sync.within),
        "sync_between": _finite_mean(sync.between),
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,
        "steps": result.steps,
        "curve": {
            "step": evals["step"].tolist(),
            "ari_fg": evals["ari_fg"].tolist(),
            "ari_bg": evals["ari_bg"].tolist(),
            "eval_mse": evals["eval_mse"].tolist(),
        },
    }


def _finite_mean(x: Any) -> float:
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _json_safe(x: Any) -> Any:
    """NaN and infinities as ``null`` (strict JSON)."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per paradigm × variant: mean and standard error over seeds of each metric."""
    rows = []
    keys = sorted({(r["paradigm"], r["variant"]) for r in runs}, key=lambda k: (k[0], k[1]))
    for pid, variant in keys:
        sel = [r for r in runs if r["paradigm"] == pid and r["variant"] == variant]
        row: dict[str, Any] = {"paradigm": pid, "variant": variant, "n_seeds": len(sel)}
        for m in ("ari_bg", "ari_fg", "mse", "sync_within", "sync_between", "train_seconds"):
            row[m], row[f"{m}_se"] = _mean_se([r[m] for r in sel])
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| paradigm | model | seeds | ARI-BG | ARI-FG | MSE | sync within | sync between |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def f(m: str, d: int = 3, r: dict[str, Any] = r) -> str:
            return f"{r[m]:.{d}f} ± {r[m + '_se']:.{d}f}"

        lines.append(
            f"| {r['paradigm']} | {r['variant']} | {r['n_seeds']} | {f('ari_bg')} | {f('ari_fg')} "
            f"| {f('mse', 4)} | {f('sync_within')} | {f('sync_between')} |"
        )
    return "\n".join(lines)


def _figures(runs: list[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analyses._objects_plots import plot_object_scenes

    made = []
    for npz in sorted(out.glob("scenes_*.npz")):
        d = np.load(npz)
        png = npz.with_suffix(".png")
        name = npz.stem.removeprefix("scenes_").replace("_", " / ")
        plot_object_scenes(
            d["images"],
            d["reconstructions"],
            d["magnitude"],
            d["phase"],
            d["clusters"],
            labels=d["labels"],
            title=name,
            path=png,
        )
        npz.unlink()
        made.append(png.name)
    keys = sorted({(r["paradigm"], r["variant"]) for r in runs})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for k, (pid, variant) in enumerate(keys):
        color = plt.get_cmap("tab10")(k)
        for r in (r for r in runs if r["paradigm"] == pid and r["variant"] == variant):
            c = r["curve"]
            label = f"{pid.split('/')[-1]} {variant}" if r["seed"] == runs[0]["seed"] else None
            for ax, m in zip(axes, ("ari_bg", "ari_fg", "eval_mse"), strict=True):
                ax.plot(c["step"], c[m], color=color, alpha=0.8, label=label)
    for ax, t in zip(axes, ("ARI-BG", "ARI-FG", "reconstruction MSE"), strict=True):
        ax.set_xlabel("training step")
        ax.set_title(t)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)
    made.append("training.png")
    return made


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, small CAE (<= 15 min)")
    parser.add_argument("--out", default="out/study_objects")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default=None, help="override the setup's device")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the setup's seeds")
    parser.add_argument("--paradigms", nargs="+", help="override the paradigms")
    parser.add_argument("--grey-steps", type=int, help="override the greyscale training steps")
    parser.add_argument("--color-steps", type=int, help="override the colour training steps")
    args = parser.parse_args(argv)
    setup = QUICK if args.quick else FULL
    changes = {
        "device": args.device,
        "seeds": tuple(args.seeds) if args.seeds else None,
        "paradigms": tuple(args.paradigms) if args.paradigms else None,
        "grey_steps": args.grey_steps,
        "color_steps": args.color_steps,
    }
    setup = dataclasses.replace(setup, **{k: v for k, v in changes.items() if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = []
    for pid in setup.paradigms:
        grey = _paradigm(pid).image_shape[0] == 1
        variants = ["cae"] if grey else ["cae", "contrastive"]
        for variant in variants:
            for seed in setup.seeds:
                jobs.append((pid, variant, seed))
    cfg = dataclasses.asdict(setup)
    runs: list[dict[str, Any]] = []
    if args.workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_one, *job, cfg, str(out)) for job in jobs]
            for f in futures:
                runs.append(f.result())
                r = runs[-1]
                print(
                    f"{r['paradigm']:22s} {r['variant']:11s} seed {r['seed']}: ARI-BG "
                    f"{r['ari_bg']:.3f} ARI-FG {r['ari_fg']:.3f} MSE {r['mse']:.4f} "
                    f"({r['train_seconds']:.0f} s)",
                    flush=True,
                )
    else:
        _threads()
        for job in jobs:
            runs.append(run_one(*job, cfg, str(out)))
    rows = summarise(runs)
    table = _table(rows)
    figures = _figures(runs, out)
    wall = time.perf_counter() - t0
    summary = {
        "mode": "quick" if args.quick else "full",
        "setup": cfg,
        "workers": args.workers,
        "wall_seconds": wall,
        "summary": rows,
        "runs": runs,
        "figures": figures,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
    }
    (out / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    (out / "table.md").write_text(table + "\n")
    print(table)
    print(f"wall time {wall:.0f} s; wrote {out}/summary.json, table.md and {len(figures)} figures")
    return summary


if __name__ == "__main__":
    main()
