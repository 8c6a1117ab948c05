"""Parameter and model recovery for the bandit agents fitted to choice data.

Issue 6, "Fitting to choice data". Synthetic subjects with known parameters are simulated
in closed loop (``neurosim.agents.run_bandit``), their choices and rewards handed to
``fit_agent`` (maximum likelihood per subject, L-BFGS-B with restarts), and the fitted
parameters compared with the true ones.

Parameter recovery (``n_subjects`` = 50 per case; parameters drawn uniformly, α
log-uniformly, from the ranges below):

- ``softmax_q/switching``: SoftmaxQ on ``bandit/switching`` (2 arms, 0.8/0.2, hazard 0.05);
  learning rate U(0.05, 0.95), β U(0.5, 10).
- ``epsilon_greedy/switching``: EpsilonGreedy there; ε U(0.02, 0.4), learning rate
  U(0.05, 0.95).
- ``softmax_q/daw2006``: SoftmaxQ (initial value 50) on the restless 4-armed bandit of Daw
  et al. (2006), payoffs 1–100; learning rate U(0.05, 0.95), β U(0.02, 0.3).
- ``kalman_softmax/daw2006``: the Kalman-filter softmax learner of Daw et al. on its own
  task, β U(0.03, 0.3) (the paper's fit: 0.112; the other parameters at the generative
  values).
- ``renyi/sajid2021``: ``RenyiAgent`` (deterministic Gauss–Hermite bound, 16 nodes; q starts
  as in the authors' code, μ = 25 with variance 8e-7) on the
  three Gaussian-mixture arms of Sajid et al. (2021), α log-uniform over the range where α
  changes behaviour, found first from a profile of switch rate and P(best arm) over a log
  grid of α (or ``--renyi-range``); α is fitted on a log scale. Skipped, and said so, when
  ``neurosim/agents/_renyi.py`` is absent.

Reported: Pearson r (also Spearman ρ, r of the logs for positive parameters, and how
many fits ended on a search bound — β of a subject whose choices are all greedy has no
finite maximum) of true vs fitted per parameter, with the target r ≥ 0.8 for learning rates and inverse temperatures (and
α). Model recovery: 50 subjects simulated by each of SoftmaxQ, EpsilonGreedy,
ThompsonBeta and a KalmanSoftmax set for 0/1 rewards (only β free) on the switching
bandit, every model fitted to every subject, the winner per subject by BIC; the
confusion matrix is P(winning model | generating model). UCB1 is left out: it is
deterministic (any deviation from its choice has probability 0), not a model to fit.

Writes ``<out>/summary.json``, ``recovery.csv`` (true and fitted per subject),
``confusion.csv``, ``recovery_scatter.png``, ``confusion.png`` and, with the Rényi agent,
``renyi_profile.png``.

Usage::

    python scripts/study_bandit_recovery.py --quick   # 200 trials (Rényi 100), about 2 min on 2 cores
    python scripts/study_bandit_recovery.py           # 300 trials (Rényi 200), more restarts
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # L-BFGS-B's tiny LAPACK calls: one thread

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats as sps  # noqa: E402

import paradigms  # noqa: E402
from neurosim.agents import choices_frame, run_bandit  # noqa: E402
from neurosim.agents._baselines import EpsilonGreedy, SoftmaxQ, ThompsonBeta  # noqa: E402
from neurosim.agents._fit import fit_agent  # noqa: E402
from neurosim.agents._kalman import KalmanSoftmax  # noqa: E402

try:  # the hook for the Rényi agent: the study runs without it and says so
    from neurosim.agents._renyi import RenyiAgent
except ImportError:  # pragma: no cover - depends on the checkout
    RenyiAgent = None

TARGET_R = 0.8
TARGETED = {"learning_rate", "beta", "alpha"}  # parameters with the r >= 0.8 target
RENYI_OPTIONS: dict[str, Any] = {"estimator": "quadrature", "n_samples": 16, "init": (25.0, 9e-4)}
# a Kalman filter for 0/1 rewards on the switching bandit (only β is fitted)
KALMAN_BINARY = functools.partial(
    KalmanSoftmax, decay=1.0, decay_center=0.5, diffusion_sd=0.1, obs_sd=0.5,
    prior_mean=0.5, prior_sd=0.3,
)  # fmt: skip
SETTINGS = {
    "quick": {"n_trials": 200, "renyi_trials": 100, "n_restarts": 3, "n_grid": 32,
              "renyi_grid": 16, "renyi_restarts": 2, "profile_sessions": 20},
    "full": {"n_trials": 300, "renyi_trials": 200, "n_restarts": 5, "n_grid": 64,
             "renyi_grid": 32, "renyi_restarts": 3, "profile_sessions": 50},
}  # fmt: skip


@dataclass
class Case:
    """One parameter-recovery case: an agent, an environment and parameter ranges."""

    name: str
    agent: Any  # class or functools.partial
    env: str
    env_kwargs: dict[str, Any]
    ranges: dict[str, tuple[float, float]]  # uniform draws
    log_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # log-uniform
    fit_kwargs: dict[str, Any] = field(default_factory=dict)

    def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        out = {p: rng.uniform(lo, hi, n) for p, (lo, hi) in self.ranges.items()}
        for p, (lo, hi) in self.log_ranges.items():
            out[p] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        return out


def _env(env_id: str, **kwargs: Any):
    try:
        return paradigms.make(env_id, **kwargs)
    except KeyError:  # bandit ids not registered yet in this checkout
        from paradigms import _bandits

        _bandits._register()
        return paradigms.make(env_id, **kwargs)


def simulate(agent: Any, env_id: str, env_kwargs: dict, params: dict, n: int, n_trials: int,
             seed: int) -> pd.DataFrame:  # fmt: skip
    env = _env(env_id, **env_kwargs)
    ds = run_bandit(agent(**params), env, n, n_trials, seed=seed, record_probabilities=False)
    return choices_frame(ds)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(sps.spearmanr(x, y).statistic)


def renyi_profile(n_sessions: int, n_trials: int, seed: int) -> dict[str, Any]:
    """Switch rate and P(best arm) of the Rényi agent over a log grid of α."""
    grid = np.exp(np.linspace(np.log(0.01), np.log(10.0), 13))
    agent = functools.partial(RenyiAgent, **RENYI_OPTIONS)
    env = _env("bandit/sajid2021")
    ds = run_bandit(agent(alpha=np.repeat(grid, n_sessions)), env, n_sessions * len(grid),
                    n_trials, seed=seed, record_probabilities=False)  # fmt: skip
    choice = ds["choice"].to_numpy().reshape(len(grid), n_sessions, n_trials)
    best = ds["best_arm"].to_numpy().reshape(len(grid), n_sessions, n_trials)
    switch = (np.diff(choice, axis=2) != 0).mean((1, 2))
    p_best = (choice == best).mean((1, 2))
    # the range where α changes behaviour: up to where both curves stay within 0.02 of
    # their value at the largest α
    flat = (np.abs(switch - switch[-1]) < 0.02) & (np.abs(p_best - p_best[-1]) < 0.02)
    tail = len(grid) - 1
    while tail > 0 and flat[tail - 1]:
        tail -= 1
    hi = float(grid[max(tail, 1)])
    return {"alpha": grid.tolist(), "switch_rate": switch.tolist(), "p_best": p_best.tolist(),
            "behaviour_range": [float(grid[0]), hi]}  # fmt: skip


def recovery_cases(renyi_range: tuple[float, float] | None) -> list[Case]:
    cases = [
        Case("softmax_q/switching", SoftmaxQ, "bandit/switching", {"hazard": 0.05},
             {"learning_rate": (0.05, 0.95), "beta": (0.5, 10.0)}),
        Case("epsilon_greedy/switching", EpsilonGreedy, "bandit/switching", {"hazard": 0.05},
             {"epsilon": (0.02, 0.4), "learning_rate": (0.05, 0.95)}),
        Case("softmax_q/daw2006", functools.partial(SoftmaxQ, initial_value=50.0),
             "bandit/daw2006", {}, {"learning_rate": (0.05, 0.95), "beta": (0.02, 0.3)},
             fit_kwargs={"bounds": {"beta": (0.0, 1.0)}}),
        Case("kalman_softmax/daw2006", KalmanSoftmax, "bandit/daw2006", {},
             {"beta": (0.03, 0.3)}),
    ]  # fmt: skip
    if RenyiAgent is not None and renyi_range is not None:
        cases.append(
            Case("renyi/sajid2021", functools.partial(RenyiAgent, **RENYI_OPTIONS),
                 "bandit/sajid2021", {}, {}, {"alpha": renyi_range},
                 fit_kwargs={"log_scale": ["alpha"], "bounds": {"alpha": (0.01, 10.0)}})
        )  # fmt: skip
    return cases


CONFUSION_MODELS: dict[str, tuple[Any, dict[str, tuple[float, float]]]] = {
    "softmax_q": (SoftmaxQ, {"learning_rate": (0.05, 0.95), "beta": (1.0, 10.0)}),
    "epsilon_greedy": (EpsilonGreedy, {"epsilon": (0.02, 0.4), "learning_rate": (0.05, 0.95)}),
    "thompson_beta": (ThompsonBeta, {}),
    "kalman_binary": (KALMAN_BINARY, {"beta": (2.0, 20.0)}),
}
CONFUSION_FIT = {"kalman_binary": {"bounds": {"beta": (0.0, 40.0)}}}


def run(mode: str, out: Path, seed: int, n_subjects: int,
        renyi_range: tuple[float, float] | None, skip_renyi: bool) -> dict[str, Any]:  # fmt: skip
    cfg = SETTINGS[mode]
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    summary: dict[str, Any] = {"mode": mode, "seed": seed, "n_subjects": n_subjects,
                               "settings": cfg, "target_r": TARGET_R}  # fmt: skip
    # -- the Rényi agent: where does α change behaviour? --------------------------------
    if RenyiAgent is None or skip_renyi:
        summary["renyi"] = {"skipped": "neurosim/agents/_renyi.py not found" if RenyiAgent
                            is None else "--skip-renyi"}  # fmt: skip
        renyi_range = None
    else:
        t0 = time.perf_counter()
        profile = renyi_profile(cfg["profile_sessions"], cfg["renyi_trials"], seed)
        if renyi_range is None:
            renyi_range = tuple(profile["behaviour_range"])
        summary["renyi"] = {"profile": profile, "alpha_range": list(renyi_range),
                            "options": RENYI_OPTIONS,
                            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        _plot_profile(profile, renyi_range, out / "renyi_profile.png")
    # -- parameter recovery ----------------------------------------------------------------
    rows = []
    summary["recovery"] = {}
    for i, case in enumerate(recovery_cases(renyi_range)):
        rng = np.random.default_rng([seed, i])
        truth = case.draw(rng, n_subjects)
        renyi = case.name.startswith("renyi")
        n_trials = cfg["renyi_trials"] if renyi else cfg["n_trials"]
        t0 = time.perf_counter()
        df = simulate(case.agent, case.env, case.env_kwargs, truth, n_subjects, n_trials,
                      seed=seed + 100 + i)  # fmt: skip
        n_arms = _env(case.env, **case.env_kwargs).n_arms
        fit = fit_agent(
            case.agent, df, n_arms=n_arms, free=list(truth), seed=seed,
            n_restarts=cfg["renyi_restarts"] if renyi else cfg["n_restarts"],
            n_grid=cfg["renyi_grid"] if renyi else cfg["n_grid"], **case.fit_kwargs,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        entry: dict[str, Any] = {"env": case.env, "n_trials": n_trials, "params": {},
                                 "seconds": round(seconds, 1),
                                 "converged": float(fit.converged.mean())}  # fmt: skip
        for p, true in truth.items():
            est = fit.params[p].to_numpy()
            stats = {"r": pearson(true, est), "spearman": spearman(true, est),
                     "n": int(len(true)), "at_bound": int(fit.at_bound()[p].sum()),
                     "true_range": [float(true.min()), float(true.max())],
                     "targeted": p in TARGETED}  # fmt: skip
            inside = ~fit.at_bound()[p].to_numpy()
            stats["r_interior"] = pearson(true[inside], est[inside])
            if (true > 0).all() and (est > 0).all():
                stats["r_log"] = pearson(np.log(true), np.log(est))
            stats["meets_target"] = bool(p not in TARGETED or stats["r"] >= TARGET_R)
            entry["params"][p] = stats
            rows += [{"case": case.name, "param": p, "subject": s, "true": t, "fitted": e}
                     for s, (t, e) in enumerate(zip(true, est, strict=True))]  # fmt: skip
        summary["recovery"][case.name] = entry
        shown = ", ".join(
            f"{p} r={v['r']:.3f} (rho {v['spearman']:.3f}, {v['at_bound']} on bound)"
            for p, v in entry["params"].items()
        )
        print(f"{case.name:28s} {shown}   ({seconds:.1f} s)", flush=True)
    recovery = pd.DataFrame(rows)
    recovery.to_csv(out / "recovery.csv", index=False)
    _plot_scatter(recovery, summary["recovery"], out / "recovery_scatter.png")
    # -- model recovery ------------------------------------------------------------------
    t0 = time.perf_counter()
    names = list(CONFUSION_MODELS)
    counts = np.zeros((len(names), len(names)), dtype=int)
    for g, gen in enumerate(names):
        agent, ranges = CONFUSION_MODELS[gen]
        rng = np.random.default_rng([seed, 1000 + g])
        params = {p: rng.uniform(lo, hi, n_subjects) for p, (lo, hi) in ranges.items()}
        df = simulate(agent, "bandit/switching", {"hazard": 0.05}, params, n_subjects,
                      cfg["n_trials"], seed=seed + 2000 + g)  # fmt: skip
        bic = np.stack([
            fit_agent(CONFUSION_MODELS[m][0], df, n_arms=2, seed=seed,
                      n_restarts=cfg["n_restarts"], n_grid=cfg["n_grid"],
                      **CONFUSION_FIT.get(m, {})).bic.to_numpy()
            for m in names
        ])  # fmt: skip
        counts[g] = np.bincount(bic.argmin(0), minlength=len(names))
        print(
            f"model recovery: {gen:15s} -> {dict(zip(names, counts[g].tolist(), strict=True))}",
            flush=True,
        )
    proportions = counts / counts.sum(1, keepdims=True)
    pd.DataFrame(counts, index=pd.Index(names, name="generating"), columns=names).to_csv(
        out / "confusion.csv"
    )
    summary["confusion"] = {
        "environment": "bandit/switching (hazard 0.05)", "n_trials": cfg["n_trials"],
        "criterion": "BIC per subject", "models": names, "counts": counts.tolist(),
        "proportions": proportions.round(4).tolist(),
        "accuracy": float(np.trace(counts) / counts.sum()),
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    _plot_confusion(proportions, counts, names, out / "confusion.png")
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _plot_scatter(recovery: pd.DataFrame, entries: dict, path: Path) -> None:
    panels = recovery[["case", "param"]].drop_duplicates().to_numpy().tolist()
    ncol = 4
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, (case, param) in zip(axes.flat, panels, strict=False):
        d = recovery[(recovery["case"] == case) & (recovery["param"] == param)]
        ax.scatter(d["true"], d["fitted"], s=12, alpha=0.7)
        lo = min(d["true"].min(), d["fitted"].min())
        hi = max(d["true"].max(), d["fitted"].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        stats = entries[case]["params"][param]
        if param == "alpha":
            ax.set_xscale("log")
            ax.set_yscale("log")
        extra = f", r(log)={stats['r_log']:.2f}" if "r_log" in stats else ""
        ax.set_title(
            f"{case}\n{param}: r={stats['r']:.2f}, ρ={stats['spearman']:.2f}{extra}\n"
            f"{stats['at_bound']} of {stats['n']} fits on a bound",
            fontsize=8,
        )
        ax.set_xlabel("true")
        ax.set_ylabel("fitted")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_confusion(prop: np.ndarray, counts: np.ndarray, names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    im = ax.imshow(prop, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{prop[i, j]:.2f}\n({counts[i, j]})", ha="center", va="center",
                    fontsize=8, color="white" if prop[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("best model (BIC)")
    ax.set_ylabel("generating model")
    fig.colorbar(im, ax=ax, label="P(best | generating)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_profile(profile: dict, alpha_range: tuple[float, float], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(profile["alpha"], profile["switch_rate"], "o-", label="switch rate")
    ax.plot(profile["alpha"], profile["p_best"], "s-", label="P(best arm)")
    ax.axvspan(*alpha_range, color="0.9", label="recovery range")
    ax.set_xscale("log")
    ax.set_xlabel("α")
    ax.legend(fontsize=8)
    ax.set_title("Rényi agent on bandit/sajid2021", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter sessions, fewer restarts")
    parser.add_argument("--out", type=Path, default=Path("out/study_bandit_recovery"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=50, help="synthetic subjects per case")
    parser.add_argument("--renyi-range", type=float, nargs=2, metavar=("LO", "HI"),
                        help="α range for the Rényi recovery (default: from the profile)")  # fmt: skip
    parser.add_argument("--skip-renyi", action="store_true")
    args = parser.parse_args(argv)
    summary = run("quick" if args.quick else "full", args.out, args.seed, args.subjects,
                  tuple(args.renyi_range) if args.renyi_range else None, args.skip_renyi)  # fmt: skip
    print(f"confusion accuracy {summary['confusion']['accuracy']:.3f}; "
          f"wrote {args.out} in {summary['seconds']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
