"""The main job end to end: train, simulate held-out trials, save, analyse, plot.

Imported lazily by the CLI only: it is the one place besides ``cli`` that reaches up
into ``analyses``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import paradigms

from ._config import RunConfig, load_run_config
from ._simulate import batch_from_trajectories, simulate
from ._train import train
from ._trajectories import save
from .models import RateRNN

#: The demo's configuration: a 64-unit leaky ReLU RNN on perceptual decision making.
DEMO_CONFIG: dict[str, Any] = {
    "paradigm": "neurogym/PerceptualDecisionMaking-v0",
    "model": {"n_hidden": 64, "activation": "relu", "tau": 200.0, "sigma_rec": 0.05, "seed": 0},
    "train": {
        "n_steps": 1500,
        "batch_size": 64,
        "lr": 0.01,
        "eval_every": 25,
        "eval_trials": 1000,
        "target_performance": 0.885,
        "seed": 0,
    },
    "simulate": {"n_trials": 500, "seed": 1},
}


def build_model(cfg: RunConfig, task: paradigms.Paradigm) -> RateRNN:
    """The RateRNN that ``cfg.model`` describes, sized for ``task`` and seeded."""
    m = cfg.model
    torch.manual_seed(m.seed)
    return RateRNN(
        task.n_inputs,
        m.n_hidden,
        task.n_outputs,
        activation=m.activation,
        tau=m.tau,
        dt=task.dt,
        sigma_rec=m.sigma_rec,
        w_rec_init=m.w_rec_init,
        gain=m.gain,
    )


def run_demo(
    out: str | Path = "out/demo", *, quiet: bool = False, config: RunConfig | None = None
) -> dict[str, Any]:
    """Train a leaky rate RNN on perceptual decision making and analyse it.

    Writes ``trajectories.nc``, ``checkpoint/``, ``history.csv``, ``summary.json`` and
    ``figures/{learning_curve,psychometric,pca}.png`` under ``out`` and returns the summary.
    """
    import analyses
    from analyses import plots

    t_start = time.perf_counter()
    cfg = config or load_run_config(DEMO_CONFIG)
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # small matrices: one thread is fastest, and runs repeat exactly
    task = paradigms.make(cfg.paradigm, **cfg.paradigm_kwargs)
    model = build_model(cfg, task)
    say = (lambda *a: None) if quiet else print
    say(f"[1/4] training {model.extra_repr()} on {task.id}")
    result = train(model, task, cfg.train, checkpoint_dir=str(out / "checkpoint"), quiet=quiet)
    t_train = time.perf_counter() - t_start
    result.history.to_csv(out / "history.csv", index=False)

    say(f"[2/4] simulating {cfg.simulate.n_trials} held-out trials (seed {cfg.simulate.seed})")
    ds = simulate(
        model,
        task,
        cfg.simulate.n_trials,
        seed=cfg.simulate.seed,
        noise=cfg.simulate.noise,
        quiet=quiet,
    )
    accuracy = float(np.mean(task.performance(ds["output"].values, batch_from_trajectories(ds))))
    path = save(ds, out / "trajectories.nc")

    say("[3/4] analysing: psychometric curve and PCA")
    curve = analyses.compute_psychometric(ds)
    choice = analyses.compute_choices(ds)
    pca = analyses.compute_pca(ds, n_components=5)

    say("[4/4] writing figures")
    n_classes = int(task.n_outputs) - 1  # fixation is not a choice
    plots.plot_learning_curve(
        result.history, chance=1 / n_classes, path=out / "figures" / "learning_curve.png"
    )
    plots.plot_psychometric(curve, path=out / "figures" / "psychometric.png")
    plots.plot_pca_trajectories(
        pca, color_by="coh", style_by=choice, path=out / "figures" / "pca.png"
    )

    coh = ds["coh"].values
    correct = choice.values == ds["ground_truth"].values + 1
    summary = {
        "paradigm": task.id,
        "model": model.config(),
        "train_steps": result.steps,
        "train_stopped_early": result.stopped_early,
        "train_eval_performance": result.performance,
        "heldout_trials": int(ds.sizes["trial"]),
        "heldout_accuracy": accuracy,
        "accuracy_by_coherence": {
            f"{c:g}": float(correct[coh == c].mean()) for c in np.unique(coh)
        },
        "psychometric_fit": {k: curve.attrs[k] for k in ("bias", "slope", "lapse")},
        "pca_explained_variance_ratio": [
            float(v) for v in pca["explained_variance_ratio"].values[:3]
        ],
        "participation_ratio": pca.attrs["participation_ratio"],
        "train_seconds": round(t_train, 2),
        "total_seconds": round(time.perf_counter() - t_start, 2),
        "files": {
            "trajectories": str(path),
            "checkpoint": str(result.checkpoint),
            "figures": sorted(str(p) for p in (out / "figures").glob("*.png")),
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    say(_format_summary(summary))
    return summary


def _format_summary(s: dict[str, Any]) -> str:
    lines = [
        "",
        "neurosim demo — summary",
        f"  paradigm            {s['paradigm']}",
        f"  training            {s['train_steps']} steps in {s['train_seconds']:.1f} s "
        f"(held-out eval {s['train_eval_performance']:.3f})",
        f"  held-out accuracy   {s['heldout_accuracy']:.3f} on {s['heldout_trials']} trials "
        "(ideal observer ≈ 0.90)",
        "  by coherence        "
        + ", ".join(f"{k}%: {v:.2f}" for k, v in s["accuracy_by_coherence"].items()),
        f"  psychometric slope  {s['psychometric_fit']['slope']:.3f} per % coherence",
        f"  PCA                 PC1–3 explain {sum(s['pca_explained_variance_ratio']):.0%}; "
        f"participation ratio {s['participation_ratio']:.2f}",
        f"  trajectories        {s['files']['trajectories']}",
        f"  figures             {', '.join(s['files']['figures'])}",
        f"  total time          {s['total_seconds']:.1f} s",
    ]
    return "\n".join(lines)
