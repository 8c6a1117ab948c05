"""The Rényi α sweep and the agent-by-environment comparison table (issue 6).

1. **α sweep** (Sajid et al. 2021): ``RenyiAgent(alpha, prior="sajid2021")`` on
   ``bandit/sajid2021`` (three Gaussian-mixture arms, the agent's bimodal prior, Monte-Carlo
   Rényi bound: 300 samples, 10 Adam steps of lr 0.05 per trial, the paper's settings),
   ``n_sessions`` sessions per α. Per α: choice entropy, switch rate, total regret and the
   reward-to-variability ("Sharpe") ratio with 95 % confidence intervals over sessions, and
   the Spearman correlation of each metric with α over sessions — measured against the
   paper's claim that small α gives more variable choices and large α greedier ones.
2. **Agent table**: every agent applicable to each environment (``bandit/bernoulli``,
   ``bandit/switching``, ``bandit/gaussian``, ``bandit/daw2006``, ``bandit/sajid2021``),
   ``n_sessions`` ≥ 100 sessions each, the same seed (hence the same environments) for
   every agent: total regret, P(best arm), choice entropy, switch rate and Sharpe ratio,
   mean ± 95 % CI over sessions. The meta-RL RNN agent is trained here on two-armed
   Bernoulli bandits (Wang et al. 2018) and joins the Bernoulli and switching rows.

Writes ``<out>/alpha_sweep_<init>.nc`` and ``.png`` (q started as in the authors' code,
μ = 25 with variance 8e-7, and at the prior's moments), ``agent_table.csv`` and
``agent_table.md``, ``curves_<env>.png`` and ``summary.json``.

Usage::

    python scripts/study_bandits.py --quick   # 100 sessions x 300 trials, a few minutes on 2 cores
    python scripts/study_bandits.py           # 200 sessions x 1000 trials
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy import stats

import analyses
import paradigms
from analyses.plots import plot_alpha_sweep, plot_bandit_curves
from neurosim import agents as ag

ALPHAS_QUICK = (0.1, 0.3, 1.0, 3.0, 10.0)
ALPHAS_FULL = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
SWEEP_METRICS = ("choice_entropy", "switch_rate", "total_regret", "sharpe")


#: q's start: the authors' code (μ = 25, variance 8e-7) or the prior's moments (our default)
INITS = {"authors_code": (25.0, 9e-4), "prior_moments": None}


def alpha_sweep(alphas, n_sessions: int, n_trials: int, seed: int, init=None) -> xr.Dataset:
    """Behaviour metrics of the Rényi agent per α on bandit/sajid2021 (same environments)."""
    env = paradigms.make("bandit/sajid2021")
    per_alpha, values = {}, {m: [] for m in SWEEP_METRICS}
    for a in alphas:
        agent = ag.RenyiAgent(alpha=a, prior="sajid2021", init=init)
        ds = ag.run_bandit(agent, env, n_sessions, n_trials, seed, record_probabilities=False)
        m = analyses.compute_bandit_metrics(ds)
        per_alpha[a] = analyses.summarise_bandit_metrics(m)
        for name in SWEEP_METRICS:
            values[name].append(m[name].values)
        print(
            f"  alpha={a:g}: " + ", ".join(f"{k} {per_alpha[a][k][0]:.3f}" for k in SWEEP_METRICS)
        )
    data = {}
    for name in SWEEP_METRICS:
        data[name] = ("alpha", [per_alpha[a][name][0] for a in alphas])
        data[f"{name}_ci"] = ("alpha", [per_alpha[a][name][1] for a in alphas])
        data[f"{name}_sessions"] = (("alpha", "session"), np.stack(values[name]))
    out = xr.Dataset(data, coords={"alpha": list(alphas), "session": np.arange(n_sessions)})
    start = "prior moments" if init is None else f"μ={init[0]:g}, σ={init[1]:g}"
    out.attrs.update(title=f"Rényi agent on bandit/sajid2021 (q starts at {start})",
                     n_trials=n_trials, seed=seed)  # fmt: skip
    return out


def spearman_vs_alpha(sweep: xr.Dataset) -> dict[str, dict[str, float]]:
    """Spearman ρ (and p) of each metric with α over all sessions of the sweep."""
    out = {}
    alpha = np.repeat(sweep["alpha"].values, sweep.sizes["session"])
    for name in SWEEP_METRICS:
        v = sweep[f"{name}_sessions"].values.ravel()
        ok = np.isfinite(v)
        rho, p = stats.spearmanr(alpha[ok], v[ok])
        out[name] = {"rho": float(rho), "p": float(p)}
    return out


def train_meta_rl_agent(quick: bool, n_trials: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """A meta-RL RNN (Wang et al. 2018) trained on independent two-armed Bernoulli bandits.

    Trained on episodes as long as the evaluation sessions (``n_trials``): a network trained
    on shorter episodes degrades past their length.
    """
    model = ag.make_meta_rl_model(n_arms=2, n_hidden=48, seed=seed)
    env = paradigms.make("bandit/bernoulli", n_arms=2)
    n_updates = 300 if quick else 1500
    t0 = time.perf_counter()
    history = ag.train_meta_rl(
        model, env, n_updates=n_updates, n_trials=n_trials, seed=seed, progress=False
    )
    info = {"n_updates": n_updates, "n_trials": n_trials, "train_s": time.perf_counter() - t0}
    info["final_mean_reward"] = float(history["mean_reward"].iloc[-20:].mean())
    return ag.MetaRLAgent(model), info


def agent_sets(meta_rl: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per environment id: (environment kwargs, {agent name: agent})."""
    binary = {
        "random": ag.RandomAgent(),
        "epsilon-greedy": ag.EpsilonGreedy(epsilon=0.1, learning_rate=0.1),
        "softmax Q": ag.SoftmaxQ(learning_rate=0.2, beta=8.0),
        "UCB1": ag.UCB1(c=1.0),
        "Thompson (Beta)": ag.ThompsonBeta(),
    }
    if meta_rl is not None:
        binary["meta-RL RNN"] = meta_rl
    gaussian = {
        "random": ag.RandomAgent(),
        "epsilon-greedy": ag.EpsilonGreedy(epsilon=0.1, learning_rate=0.1),
        "softmax Q": ag.SoftmaxQ(learning_rate=0.2, beta=3.0),
        "UCB1": ag.UCB1(c=1.0),
        "Thompson (Gaussian)": ag.ThompsonGaussian(prior_mean=0.0, prior_sd=1.0, obs_sd=1.0),
        "Rényi α=1 (closed form)": ag.RenyiAgent(
            alpha=1.0, prior={"means": [0.0], "sds": 1.0}, obs_sd=1.0
        ),
    }
    daw = {
        "random": ag.RandomAgent(),
        "epsilon-greedy": ag.EpsilonGreedy(epsilon=0.1, learning_rate=0.5),
        "softmax Q": ag.SoftmaxQ(learning_rate=0.5, beta=0.112),
        "UCB1": ag.UCB1(c=20.0),
        "Thompson (Gaussian)": ag.ThompsonGaussian(prior_mean=50.0, prior_sd=20.0, obs_sd=4.0),
        "Kalman softmax (Daw 2006)": ag.KalmanSoftmax(),
    }
    sajid = {
        "random": ag.RandomAgent(),
        "epsilon-greedy": ag.EpsilonGreedy(epsilon=0.1, learning_rate=0.1),
        "softmax Q": ag.SoftmaxQ(learning_rate=0.1, beta=1.0),
        "UCB1": ag.UCB1(c=3.0),
        "Thompson (Gaussian)": ag.ThompsonGaussian(prior_mean=15.0, prior_sd=5.0, obs_sd=2.0),
        "Kalman softmax": ag.KalmanSoftmax(
            decay=1.0, diffusion_sd=0.0, obs_sd=2.0, prior_mean=15.0, prior_sd=5.0, beta=1.0
        ),
        "Rényi α=0.5": ag.RenyiAgent(alpha=0.5, prior="sajid2021", init=INITS["authors_code"]),
        "Rényi α=1": ag.RenyiAgent(alpha=1.0, prior="sajid2021", init=INITS["authors_code"]),
        "Rényi α=5": ag.RenyiAgent(alpha=5.0, prior="sajid2021", init=INITS["authors_code"]),
    }
    return {
        "bandit/bernoulli": ({"n_arms": 2}, binary),
        "bandit/switching": ({}, dict(binary)),
        "bandit/gaussian": ({"n_arms": 3}, gaussian),
        "bandit/daw2006": ({}, daw),
        "bandit/sajid2021": ({}, sajid),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 sessions x 300 trials")
    parser.add_argument("--out", default="out/study_bandits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-meta-rl", action="store_true", help="skip training the RNN agent")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_sessions, n_trials = (100, 300) if args.quick else (200, 1000)
    alphas = ALPHAS_QUICK if args.quick else ALPHAS_FULL
    t_start = time.perf_counter()

    sweeps, rho = {}, {}
    for label, init in INITS.items():
        print(f"alpha sweep ({label}): {len(alphas)} values x {n_sessions} x {n_trials} trials")
        sweeps[label] = alpha_sweep(alphas, n_sessions, n_trials, args.seed, init)
        sweeps[label].to_netcdf(out / f"alpha_sweep_{label}.nc", engine="h5netcdf")
        plot_alpha_sweep(sweeps[label], path=out / f"alpha_sweep_{label}.png")
        rho[label] = spearman_vs_alpha(sweeps[label])

    meta_rl, meta_info = (
        (None, {}) if args.no_meta_rl else train_meta_rl_agent(args.quick, n_trials, args.seed)
    )
    tables, runs_summary = [], {}
    for env_id, (kwargs, agents) in agent_sets(meta_rl).items():
        env = paradigms.make(env_id, **kwargs)
        runs = {}
        for name, agent in agents.items():
            runs[name] = ag.run_bandit(agent, env, n_sessions, n_trials, args.seed,
                                       record_probabilities=False)  # fmt: skip
        table = analyses.compare_agents(runs)
        table.insert(0, "environment", env_id)
        tables.append(table)
        print(
            f"\n{env_id}\n{analyses.markdown_table(table.drop(columns='environment'), index=True)}"
        )
        plot_bandit_curves(runs, title=env_id, path=out / f"curves_{env_id.split('/')[1]}.png")
        runs_summary[env_id] = {
            name: analyses.summarise_bandit_metrics(analyses.compute_bandit_metrics(ds))
            for name, ds in runs.items()
        }
    import pandas as pd

    full = pd.concat(tables)
    full.to_csv(out / "agent_table.csv")
    (out / "agent_table.md").write_text(analyses.markdown_table(full, index=True) + "\n")
    summary = {
        "n_sessions": n_sessions,
        "n_trials": n_trials,
        "seed": args.seed,
        "alpha_sweep": {
            label: {
                str(a): {
                    m: [float(sw[m].sel(alpha=a)), float(sw[f"{m}_ci"].sel(alpha=a))]
                    for m in SWEEP_METRICS
                }
                for a in alphas
            }
            for label, sw in sweeps.items()
        },  # fmt: skip
        "spearman_vs_alpha": rho,
        "meta_rl": meta_info,
        "agents": runs_summary,
        "elapsed_s": time.perf_counter() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\nSpearman rho of each metric with alpha (over sessions):")
    for label, by_metric in rho.items():
        for name, r in by_metric.items():
            print(f"  {label} {name}: rho = {r['rho']:+.3f} (p = {r['p']:.2g})")
    print(f"done in {summary['elapsed_s']:.0f} s; results in {out}")
    return summary


if __name__ == "__main__":
    main()
