"""Benchmark (g): the vectorised Rényi-bound agent vs the published per-trial optimiser loop.

10,000 sessions x 1,000 trials of ``RenyiAgent(alpha=0.5, prior="sajid2021")`` on
``bandit/sajid2021`` (Monte-Carlo bound, 300 samples, 10 Adam steps per trial at lr 0.05,
on the chosen arm; one thread):

- **vectorised** (ours): ``act`` / ``env.step`` / ``update`` for all sessions at once; the
  optimiser is one loop over blocks of sessions and the 10 steps, with analytic
  reparameterisation gradients and sufficient statistics (``neurosim.agents._renyi_bound``).
- **published loop** (the baseline): the approach of Sajid et al.'s code
  (github.com/ucbtns/renyibounds, ``mab_sim.learn``), one agent at a time: per arm a
  ``(μ, log σ²)`` torch parameter and its own ``torch.optim.Adam``; per trial the chosen
  arm's reward joins its observation list and 10 Adam steps run on the 300-sample bound
  built from ``torch.distributions`` (mixture prior) and the log-likelihood of every stored
  observation, differentiated by autograd; the choice samples ``θ̃ ~ q`` per arm and takes
  the argmax of ``θ̃/σ²``. The same model as ours (likelihood SD ``obs_sd`` summed over the
  observations, same prior, initial ``q`` and Adam settings). Timed on a few sessions over
  all their trials (its cost grows with the number of stored observations), run twice
  (two seeds; the ratio uses their mean) and reported per agent-trial, which is what it
  costs: agents are independent.
- **loop, sufficient statistics** (context): the same loop with the likelihood from
  ``(n, Σy, Σy²)``, so only Python/autograd overhead is left against the vectorised agent.

Equal posteriors: the loops replay the choices and rewards of the first sessions of the
vectorised run; after every trial we compare the chosen arm's ``μ`` and ``log σ`` of the
vectorised agent with the loop's, against the loop's own Monte-Carlo noise (the loop run
twice with different seeds): the vectorised agent must disagree with the loop no more than
the loop disagrees with itself.

Run ``python scripts/bench/bench_renyi.py [--quick] [--sessions S] [--trials T] [--json PATH]``
(``--quick``: 1,000 sessions x 100 trials, loops on 2 sessions; under a minute).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import environment, parse_args, print_table, set_threads, write_json

N_SESSIONS, N_TRIALS = 10_000, 1_000
ALPHA, N_SAMPLES, N_STEPS, LR, OBS_SD = 0.5, 300, 10, 0.05, 1.0
TARGET_RATIO = 100.0
MAIN, BASELINE, SUFFICIENT = "vectorised", "published loop", "loop, sufficient statistics"


def run_vectorised(n_sessions: int, n_trials: int, n_keep: int, seed: int = 0) -> dict[str, Any]:
    """The closed loop for all sessions; keeps choices, rewards and q of the first sessions."""
    import paradigms
    from neurosim.agents._renyi import RenyiAgent

    env = paradigms.make("bandit/sajid2021")
    agent = RenyiAgent(ALPHA, prior="sajid2021", obs_sd=OBS_SD, n_samples=N_SAMPLES,
                       n_steps=N_STEPS, lr=LR)  # fmt: skip
    env_rng, agent_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    env.reset(n_sessions, env_rng)
    agent.reset(n_sessions, env.n_arms, agent_rng)
    choices = np.empty((n_keep, n_trials), np.int64)
    rewards = np.empty((n_keep, n_trials))
    mean = np.empty((n_keep, n_trials))
    log_sd = np.empty((n_keep, n_trials))
    rows = np.arange(n_keep)
    t0 = time.perf_counter()
    for t in range(n_trials):
        c = agent.act()
        r = env.step(c)
        agent.update(c, r)
        choices[:, t], rewards[:, t] = c[:n_keep], r[:n_keep]
        mean[:, t] = agent._mu[rows, c[:n_keep]]
        log_sd[:, t] = 0.5 * agent._lv[rows, c[:n_keep]]
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "choices": choices, "rewards": rewards, "mean": mean,
            "log_sd": log_sd}  # fmt: skip


def run_loop(choices: np.ndarray, rewards: np.ndarray, seed: int, sufficient: bool) -> dict:
    """The published approach, one agent at a time, replaying the given choices and rewards."""
    import torch
    import torch.distributions as D

    from neurosim.agents._renyi import SAJID2021_PRIOR

    torch.manual_seed(seed)
    w = torch.tensor(SAJID2021_PRIOR["weights"])
    m = torch.tensor(SAJID2021_PRIOR["means"])
    sd = float(SAJID2021_PRIOR["sds"])
    mean0 = (w * m).sum(1)
    var0 = (w * (sd**2 + m**2)).sum(1) - mean0**2
    n_sessions, n_trials = choices.shape
    out_mean = np.empty((n_sessions, n_trials))
    out_log_sd = np.empty((n_sessions, n_trials))
    t0 = time.perf_counter()
    for s in range(n_sessions):
        params = [torch.nn.Parameter(torch.stack([mean0[a], torch.log(var0[a])])) for a in range(3)]
        optims = [torch.optim.Adam([p], lr=LR) for p in params]
        obs: list[list[float]] = [[], [], []]
        stats = np.zeros((3, 3))
        for t in range(n_trials):
            with torch.no_grad():  # the choice: θ̃ ~ q per arm, argmax θ̃/σ² (replayed below)
                q = torch.stack([p.detach() for p in params])
                var = torch.exp(q[:, 1])
                _ = int(torch.argmax((torch.randn(3) * torch.sqrt(var) + q[:, 0]) / var))
            arm, y = int(choices[s, t]), float(rewards[s, t])
            obs[arm].append(y)
            stats[arm] += (1.0, y, y * y)
            n, sy, syy = stats[arm]
            prior = D.MixtureSameFamily(D.Categorical(w[arm]), D.Normal(m[arm], torch.tensor(sd)))
            for _ in range(N_STEPS):
                optims[arm].zero_grad()
                mu, log_var = params[arm][0], params[arm][1]
                var = torch.exp(log_var)
                theta = torch.randn(N_SAMPLES) * torch.sqrt(var) + mu
                if sufficient:
                    loglik = -0.5 * (n * math.log(2 * math.pi * OBS_SD**2)
                                     + (syy - 2 * sy * theta + n * theta**2) / OBS_SD**2)  # fmt: skip
                else:
                    factor = D.Normal(torch.tensor(obs[arm]), OBS_SD)
                    loglik = factor.log_prob(theta.reshape(-1, 1)).sum(1)
                logq = -0.5 * torch.log(2 * math.pi * var) - 0.5 * (theta - mu) ** 2 / var
                logf = (1 - ALPHA) * (prior.log_prob(theta) + loglik - logq)
                loss = (torch.logsumexp(logf, 0) - math.log(N_SAMPLES)) / (ALPHA - 1)
                loss.backward()
                optims[arm].step()
            out_mean[s, t] = params[arm][0].item()
            out_log_sd[s, t] = 0.5 * params[arm][1].item()
    return {"seconds": time.perf_counter() - t0, "mean": out_mean, "log_sd": out_log_sd}


def _agreement(a: dict, b: dict) -> dict[str, float]:
    dm = np.abs(a["mean"] - b["mean"]).ravel()
    ds = np.abs(a["log_sd"] - b["log_sd"]).ravel()
    return {"median_abs_mean": float(np.median(dm)), "p90_abs_mean": float(np.quantile(dm, 0.9)),
            "median_abs_log_sd": float(np.median(ds)),
            "p90_abs_log_sd": float(np.quantile(ds, 0.9))}  # fmt: skip


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sessions", type=int, help=f"vectorised sessions (default {N_SESSIONS})")
    parser.add_argument("--trials", type=int, help=f"trials per session (default {N_TRIALS})")
    parser.add_argument("--loop-sessions", type=int, help="sessions the loops replay")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(__doc__.splitlines()[0], argv, _extra)
    set_threads(1)
    n_sessions = args.sessions or (1_000 if args.quick else N_SESSIONS)
    n_trials = args.trials or (100 if args.quick else N_TRIALS)
    n_loop = args.loop_sessions or (2 if args.quick else 4)
    vec = run_vectorised(n_sessions, n_trials, n_loop)
    c, r = vec["choices"], vec["rewards"]
    loops = {
        BASELINE: run_loop(c, r, seed=1, sufficient=False),
        "published loop, second seed": run_loop(c, r, seed=2, sufficient=False),
        SUFFICIENT: run_loop(c, r, seed=3, sufficient=True),
    }
    rows = [{"method": MAIN, "sessions": n_sessions, "trials": n_trials,
             "seconds": vec["seconds"]}]  # fmt: skip
    rows += [{"method": k, "sessions": n_loop, "trials": n_trials, "seconds": v["seconds"]}
             for k, v in loops.items()]  # fmt: skip
    for row in rows:
        row["us_per_agent_trial"] = row["seconds"] / (row["sessions"] * row["trials"]) * 1e6
    base_us = 0.5 * (rows[1]["us_per_agent_trial"] + rows[2]["us_per_agent_trial"])  # both seeds
    for row in rows:
        row["ratio_vs_loop"] = base_us / row["us_per_agent_trial"]
    ratio = rows[0]["ratio_vs_loop"]
    ratio_suff = rows[3]["us_per_agent_trial"] / rows[0]["us_per_agent_trial"]
    agree = {
        "vectorised vs loop": _agreement(vec, loops[BASELINE]),
        "loop vs loop (two seeds)": _agreement(
            loops["published loop, second seed"], loops[BASELINE]
        ),  # fmt: skip
        "vectorised vs loop, sufficient statistics": _agreement(vec, loops[SUFFICIENT]),
    }
    mode = "quick" if args.quick else "full"
    print_table(
        [{"method": r_["method"], "sessions": r_["sessions"], "trials": r_["trials"],
          "seconds": r_["seconds"], "us/agent-trial": r_["us_per_agent_trial"],
          "x published loop": r_["ratio_vs_loop"]} for r_ in rows],
        f"Rényi agent (alpha {ALPHA}, {N_SAMPLES} MC samples, {N_STEPS} Adam steps) on "
        f"bandit/sajid2021, 1 thread ({mode})",
    )  # fmt: skip
    print_table([{"comparison": k, **{kk: round(vv, 4) for kk, vv in v.items()}}
                 for k, v in agree.items()], "posterior agreement after each trial (chosen arm)")  # fmt: skip
    same = agree["vectorised vs loop"]
    noise = agree["loop vs loop (two seeds)"]
    equal = (same["median_abs_mean"] <= 1.5 * noise["median_abs_mean"] + 1e-3
             and same["median_abs_log_sd"] <= 1.5 * noise["median_abs_log_sd"] + 1e-3)  # fmt: skip
    print(
        f"{MAIN} ({n_sessions:,} sessions) vs {BASELINE}: {ratio:.0f}x per agent-trial, vs "
        f"{SUFFICIENT}: {ratio_suff:.0f}x (target >= {TARGET_RATIO:.0f}x; loops on {n_loop} "
        f"sessions x {n_trials} trials). Equal posteriors within the loop's own MC noise: {equal}."
    )
    result = {
        "benchmark": "renyi",
        "shape": {"sessions": n_sessions, "trials": n_trials, "loop_sessions": n_loop},
        "settings": {
            "alpha": ALPHA,
            "n_samples": N_SAMPLES,
            "n_steps": N_STEPS,
            "lr": LR,
            "obs_sd": OBS_SD,
            "prior": "sajid2021",
        },  # fmt: skip
        "baseline": BASELINE,
        "mode": mode,
        "ratio": ratio,
        "ratio_vs_sufficient_loop": ratio_suff,
        "target_ratio": TARGET_RATIO,
        "met": bool(ratio >= TARGET_RATIO),
        "equal_posteriors": bool(equal),
        "agreement": agree,
        "rows": rows,
        "environment": environment(),
    }
    if args.json:
        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
