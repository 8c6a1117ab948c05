"""Meta-RL RNN agent (Wang et al. 2018): train by A2C, compare with Thompson sampling, PCA.

For each bandit distribution (two-armed Bernoulli with correlated arms, ``p2 = 1 − p1``, as in
Wang et al. 2018, and with independent arms):

1. train a rate RNN (``make_meta_rl_model``: 48 ReLU units, inputs one-hot previous choice and
   previous reward, outputs two policy logits and a value) by advantage actor-critic on fresh
   100-trial sessions drawn every update, one gradient step per 20 trials (``train_meta_rl``);
2. run it with fixed weights on ``n_eval`` held-out sessions of ``n_eval_trials`` trials, next
   to Thompson sampling with a Beta(1, 1) prior (which ignores the correlation) and a random
   agent, all on the same sessions (same seed): mean regret per trial and total regret with 95 %
   confidence intervals over sessions, P(best arm) by trial;
3. PCA of the RNN states over the held-out sessions, and how well the states carry the Bayesian
   belief: the posterior mean of ``p_0 − p_1`` given the choices and rewards so far (under the
   environment's true prior) — its correlation with PC1 and the R² of a linear read-out from
   all units (fitted on half the sessions, scored on the other half).

Writes ``<out>/summary.json``, ``history_<env>.csv``, ``curves_<env>.png``, ``pca_<env>.png``
and ``trajectories_<env>.nc`` (the held-out states in the neurosim trajectory schema).

Usage::

    python scripts/study_meta_rl.py --quick   # 400 updates per bandit, ~1-3 min on 2 cores
    python scripts/study_meta_rl.py           # 3000 updates per bandit, ~10-20 min
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import analyses  # noqa: E402
import neurosim  # noqa: E402
import paradigms  # noqa: E402
from analyses.plots import plot_bandit_curves  # noqa: E402
from neurosim.agents import RandomAgent, run_bandit  # noqa: E402

try:  # public names once the lead re-exports them
    from neurosim.agents import (  # noqa: E402
        MetaRLAgent,
        ThompsonBeta,
        make_meta_rl_model,
        meta_rl_trajectories,
        train_meta_rl,
    )
except ImportError:  # pragma: no cover
    from neurosim.agents._a2c import train_meta_rl  # noqa: E402
    from neurosim.agents._baselines import ThompsonBeta  # noqa: E402
    from neurosim.agents._meta_rl import (  # noqa: E402
        MetaRLAgent,
        make_meta_rl_model,
        meta_rl_trajectories,
    )

ENVS = {"correlated": {"correlated": True}, "independent": {}}
TRAIN = dict(lr=(1e-2, 1e-3), entropy_coef=0.05, n_steps=20)  # lr annealed linearly
QUICK = dict(n_updates=400, n_sessions=128, n_trials=100, n_eval=500, n_eval_trials=100, **TRAIN)
FULL = dict(n_updates=3000, n_sessions=128, n_trials=100, n_eval=1000, n_eval_trials=100, **TRAIN)


def posterior_mean_difference(
    choice: np.ndarray, reward: np.ndarray, correlated: bool
) -> np.ndarray:
    """E[p_0 − p_1 | history before trial t], ``[S, T]``, under the environment's U(0, 1) prior.

    Independent arms: Beta(1 + successes, 1 + failures) per arm. Correlated arms
    (``p_1 = 1 − p_0``): a success on arm 0 or a failure on arm 1 counts for ``p_0``, so
    ``p_0 ~ Beta(1 + s_0 + f_1, 1 + f_0 + s_1)`` and ``E[p_0 − p_1] = 2 E[p_0] − 1``.
    """
    S, T = choice.shape
    counts = np.zeros((S, T, 2, 2))  # arm, (success, failure): before trial t
    for t in range(1, T):
        counts[:, t] = counts[:, t - 1]
        rows = np.arange(S)
        c, r = choice[:, t - 1], reward[:, t - 1]
        counts[rows, t, c, 0] += r
        counts[rows, t, c, 1] += 1 - r
    s, f = counts[..., 0], counts[..., 1]
    if correlated:
        a, b = 1 + s[..., 0] + f[..., 1], 1 + f[..., 0] + s[..., 1]
        return 2 * a / (a + b) - 1
    mean = (1 + s) / (2 + s + f)
    return mean[..., 0] - mean[..., 1]


def belief_decoding(ds: Any, pca: Any, belief: np.ndarray) -> dict[str, float]:
    """|corr(PC1, belief)| and the held-out R² of a linear read-out of the belief from states."""
    pc1 = pca["projection"].isel(component=0).values.ravel()
    corr = float(np.corrcoef(pc1, belief.ravel())[0, 1])
    x = ds["state"].values.astype(np.float64)
    S = x.shape[0]
    train, test = np.arange(S) < S // 2, np.arange(S) >= S // 2
    design = lambda z: np.c_[z.reshape(-1, z.shape[-1]), np.ones(z.shape[0] * z.shape[1])]  # noqa: E731
    coef, *_ = np.linalg.lstsq(design(x[train]), belief[train].ravel(), rcond=None)
    pred, y = design(x[test]) @ coef, belief[test].ravel()
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return {"pc1_belief_corr": abs(corr), "linear_readout_r2": float(r2)}


def plot_pca(ds: Any, pca: Any, belief: np.ndarray, title: str, path: Path) -> None:
    proj = pca["projection"].values
    ratio = pca["explained_variance_ratio"].values
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    p0 = ds["p_arm0"].values
    for s in range(min(40, proj.shape[0])):
        ax1.plot(proj[s, :, 0], proj[s, :, 1], lw=0.5, alpha=0.6, color=plt.cm.coolwarm(p0[s]))
    ax1.scatter(proj[:, 0, 0], proj[:, 0, 1], s=12, c="k", marker="x", label="trial 1")
    ax1.set(xlabel=f"PC1 ({ratio[0]:.0%})", ylabel=f"PC2 ({ratio[1]:.0%})",
            title=f"{title}: sessions coloured by p(arm 0)")  # fmt: skip
    ax1.legend(frameon=False, fontsize=7)
    sc = ax2.scatter(proj[..., 0].ravel(), proj[..., 1].ravel(), c=belief.ravel(), s=2,
                     cmap="coolwarm", vmin=-1, vmax=1, alpha=0.5)  # fmt: skip
    fig.colorbar(sc, ax=ax2, label="posterior E[p0 − p1]")
    ax2.set(xlabel="PC1", ylabel="PC2", title="every state, coloured by the Bayesian belief")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def study(name: str, env_kwargs: dict, cfg: dict, seed: int, out: Path) -> dict[str, Any]:
    env = paradigms.make("bandit/bernoulli", **env_kwargs)
    model = make_meta_rl_model(n_arms=2, n_hidden=48, seed=seed)
    t0 = time.perf_counter()
    hist = train_meta_rl(
        model, env, n_updates=cfg["n_updates"], n_sessions=cfg["n_sessions"],
        n_trials=cfg["n_trials"], n_steps=cfg["n_steps"], lr=cfg["lr"],
        entropy_coef=cfg["entropy_coef"], seed=seed, progress=True,
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    hist.to_csv(out / f"history_{name}.csv", index=False)
    S, T, eval_seed = cfg["n_eval"], cfg["n_eval_trials"], seed + 1000
    runs = {
        "meta-RL RNN": run_bandit(MetaRLAgent(model), env, S, T, eval_seed),
        "Thompson (Beta)": run_bandit(ThompsonBeta(), env, S, T, eval_seed),
        "random": run_bandit(RandomAgent(), env, S, T, eval_seed),
    }
    plot_bandit_curves(runs, title=f"bernoulli, {name} arms",
                                      path=out / f"curves_{name}.png")  # fmt: skip
    agents: dict[str, Any] = {}
    for label, ds in runs.items():
        regret = ds["regret"].values
        m, h, _ = analyses.mean_ci(regret.mean(1))
        tot, tot_h, _ = analyses.mean_ci(regret.sum(1))
        curves = analyses.compute_bandit_curves(ds)
        p_best = curves["p_best"].values
        agents[label] = {
            "mean_regret_per_trial": [float(m), float(h)],
            "total_regret": [float(tot), float(tot_h)],
            "p_best_by_trial": {
                str(t + 1): round(float(p_best[t]), 4)
                for t in (0, 1, 2, 4, 9, 19, 49, T - 1)
                if t < T
            },  # fmt: skip
            "p_best_last_10": float(p_best[-10:].mean()),
        }
        print(f"  {label:>16}: regret/trial {m:.4f} ± {h:.4f}, total {tot:.2f} ± {tot_h:.2f}, "
              f"P(best) last 10 trials {p_best[-10:].mean():.3f}")  # fmt: skip
    traj = meta_rl_trajectories(model, env, S, T, eval_seed)
    assert np.array_equal(traj["choice"].values, runs["meta-RL RNN"]["choice"].values)
    neurosim.save(traj, out / f"trajectories_{name}.nc")
    pca = analyses.compute_pca(traj, n_components=5)
    belief = posterior_mean_difference(
        traj["choice"].values, traj["reward"].values, bool(env_kwargs.get("correlated"))
    )
    decoding = belief_decoding(traj, pca, belief)
    plot_pca(traj, pca, belief, f"bernoulli, {name}", out / f"pca_{name}.png")
    ratio = pca["explained_variance_ratio"].values
    print(f"  PCA: variance ratio {np.round(ratio[:3], 3).tolist()}, participation ratio "
          f"{pca.attrs['participation_ratio']:.2f}; belief {decoding}")  # fmt: skip
    return {
        "paradigm": env.id,
        "paradigm_kwargs": env.kwargs,
        "train_s": round(train_s, 1),
        "train_final_mean_regret": float(hist["mean_regret"].tail(50).mean()),
        "train_first_mean_regret": float(hist["mean_regret"].head(50).mean()),
        "agents": agents,
        "pca_explained_variance_ratio": [round(float(r), 4) for r in ratio],
        "participation_ratio": float(pca.attrs["participation_ratio"]),
        **decoding,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short training (a few minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/study_meta_rl"))
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--n-updates", type=int, help="override the mode's training updates")
    parser.add_argument("--n-trials", type=int, help="override the training episode length")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = dict(QUICK if args.quick else FULL)
    for key in ("n_updates", "n_trials"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = {}
    for name in args.envs:
        print(f"== {name} two-armed Bernoulli bandits ==")
        results[name] = study(name, ENVS[name], cfg, args.seed, args.out)
    summary = {
        "mode": "quick" if args.quick else "full",
        "config": cfg,
        "seed": args.seed,
        "model": "make_meta_rl_model(n_arms=2, n_hidden=48): RateRNN, ReLU, dt = tau = 1000 ms",
        "train": "train_meta_rl: A2C, gamma 0.9, lambda 1, value_coef 0.5, state_l2 1e-3, Adam, grad clip 10, "
        "advantages standardised per chunk; n_steps, lr and entropy_coef as in config",
        "results": results,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/summary.json in {summary['elapsed_s']} s")


if __name__ == "__main__":
    main()
