"""Advantage actor-critic training of meta-RL networks across a distribution of bandits.

Each update draws ``n_sessions`` fresh sessions from the environment (its ``reset`` draws the
arm statistics: independent or correlated Bernoulli arms, ...), runs the network closed-loop
for ``n_trials`` trials, all sessions at once, and takes Adam steps on the A2C loss
(Mnih et al. 2016; Wang et al. 2018)::

    L = −mean(log π(a_t | h_t) · Â_t) + value_coef · ½ mean((R_t − V_t)²) − β · mean(H[π(·|h_t)])

By default one step per episode, with ``R_t = Σ_k γ^k r_{t+k}`` the discounted return to the
end of the episode (nothing bootstrapped: the episode ends after ``n_trials``); with
``n_steps`` one step per chunk of ``n_steps`` trials, each chunk's returns bootstrapped from
the value head at the state after it (truncated backpropagation, as in Mnih et al.'s n-step
A2C). The advantage ``Â_t`` comes from the value head: generalised advantage estimation with
``λ = gae_lambda``; ``λ = 1`` (default) gives exactly ``Â_t = R_t − V_t``. ``β`` and the
learning rate are fixed or annealed linearly over the updates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._checkpoint import find_checkpoint, read_checkpoint, write_checkpoint
from .._device import resolve_device
from .._train import TrainingDivergedError, quiet_mode, seeded_rng, seeded_torch
from ..models import RecurrentModel
from ._base import BanditEnvironment
from ._meta_rl_loop import ClosedLoop, meta_rl_layout

HISTORY_COLUMNS = (
    "update", "mean_reward", "mean_regret", "loss", "policy_loss", "value_loss", "entropy",
    "entropy_coef", "lr", "grad_norm", "elapsed_s",
)  # fmt: skip


def discounted_returns(
    rewards: torch.Tensor, gamma: float, bootstrap: torch.Tensor | None = None
) -> torch.Tensor:
    """``R_t = r_t + γ R_{t+1}`` along the last axis, with ``R_T = bootstrap`` (default 0).

    Examples
    --------
    >>> discounted_returns(torch.tensor([[1.0, 0.0, 1.0]]), 0.5).tolist()
    [[1.25, 0.5, 1.0]]
    """
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0]) if bootstrap is None else bootstrap
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    return out


def advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    lam: float = 1.0,
    bootstrap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalised advantage estimates ``Â_t = Σ_k (γλ)^k δ_{t+k}``, ``δ_t = r_t + γV_{t+1} − V_t``.

    ``V_T = bootstrap`` (default 0: the episode ends). With ``lam = 1`` this is exactly
    ``discounted_returns(rewards, gamma, bootstrap) − values``.

    Examples
    --------
    >>> r, v = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.5, 0.5]])
    >>> advantages(r, v, 0.5).tolist()
    [[0.75, 0.0, 0.5]]
    """
    last = torch.zeros_like(values[..., 0]) if bootstrap is None else bootstrap
    next_v = torch.cat([values[..., 1:], last[..., None]], -1)
    delta = rewards + gamma * next_v - values
    return discounted_returns(delta, gamma * lam)


def _schedule(name: str, value: float | Sequence[float], n_updates: int) -> np.ndarray:
    """A number (fixed) or a pair ``(start, end)`` annealed linearly over the updates."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        start = end = float(value)
    else:
        pair = tuple(value) if isinstance(value, Sequence) else ()
        if len(pair) != 2:
            raise ValueError(
                f"{name} = {value!r} is not allowed; give a number or a pair (start, end) "
                "annealed linearly over the updates"
            )
        start, end = float(pair[0]), float(pair[1])
    if not (np.isfinite([start, end]).all() and min(start, end) >= 0):
        raise ValueError(f"{name} = {value!r} is not allowed; it must be >= 0")
    return np.linspace(start, end, n_updates) if n_updates > 1 else np.array([start])


def _check(name: str, value: Any, low: float, high: float = np.inf, integer: bool = False) -> None:
    ok = isinstance(value, int | np.integer) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not (low <= value <= high):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} = {value!r} is not allowed; give {kind} in [{low}, {high}]")


def _a2c_step(
    run: dict[str, Any],
    bootstrap: torch.Tensor | None,
    optimizer: torch.optim.Optimizer,
    params: list[torch.Tensor],
    *,
    gamma: float,
    lam: float,
    value_coef: float,
    beta: float,
    grad_clip: float | None,
    normalize: bool,
    state_l2: float,
    where: str,
) -> dict[str, float]:
    """One A2C gradient step on a chunk of trials; ``bootstrap``: V of the state after it."""
    values = run["value"]
    rewards = torch.from_numpy(run["reward"]).to(device=values.device, dtype=values.dtype)
    returns = discounted_returns(rewards, gamma, bootstrap)
    adv = advantages(rewards, values.detach(), gamma, lam, bootstrap)
    if normalize and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = -(run["logp"] * adv).mean()
    value_loss = 0.5 * (returns - values).pow(2).mean()
    entropy = run["entropy"].mean()
    loss = policy_loss + value_coef * value_loss - beta * entropy
    if state_l2:
        loss = loss + state_l2 * run["state"].pow(2).mean()
    if not torch.isfinite(loss):
        raise TrainingDivergedError(f"the loss became {loss.item()} at {where}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, np.inf if grad_clip is None else grad_clip)
    if not torch.isfinite(norm):
        raise TrainingDivergedError(f"the gradient norm became {norm.item()} at {where}")
    optimizer.step()
    return {
        "loss": loss.item(),
        "policy_loss": policy_loss.item(),
        "value_loss": value_loss.item(),
        "entropy": entropy.item(),
        "grad_norm": norm.item(),
    }


def train_meta_rl(
    model: RecurrentModel,
    env: BanditEnvironment,
    *,
    n_updates: int = 2000,
    n_sessions: int = 128,
    n_trials: int = 100,
    n_steps: int | None = 20,
    gamma: float = 0.9,
    gae_lambda: float = 1.0,
    value_coef: float = 0.5,
    entropy_coef: float | Sequence[float] = 0.05,
    lr: float | Sequence[float] = (1e-2, 1e-3),
    grad_clip: float | None = 10.0,
    normalize_advantages: bool = True,
    state_l2: float = 1e-3,
    noise: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 100,
) -> pd.DataFrame:
    """Train a meta-RL network by advantage actor-critic on a distribution of bandits.

    Parameters
    ----------
    model : RecurrentModel
        A model with the meta-RL layout (:func:`make_meta_rl_model`; any model of the
        contract, ``ModularRNN`` included, with ``n_inputs = A + 1 (+1)`` and
        ``n_outputs = A + 1``). Trained in place.
    env : closed-loop bandit
        E.g. ``paradigms.make("bandit/bernoulli", correlated=True)``; each update draws
        ``n_sessions`` fresh sessions from it.
    n_updates : int, default 2000
        Batches of episodes (each gives ``ceil(n_trials / n_steps)`` gradient steps).
    n_sessions : int, default 128
        Episodes per update, run as one vectorised batch.
    n_trials : int, default 100
        Bandit trials per episode (Wang et al. 2018: 100).
    n_steps : int or None, default 20
        Truncate: one gradient step every ``n_steps`` trials of the episode, bootstrapping
        the returns of each chunk from the value head at the state after it and cutting the
        backpropagation between chunks (the state carries over). ``None``: the whole episode
        in one step (returns to the episode's end, nothing bootstrapped). Chunks of 20 learn
        about as fast per trial simulated as 20-trial episodes while the network still sees
        (and is trained on) every trial of the full episode, so it is not left to
        extrapolate its dynamics past the training horizon.
    gamma : float, default 0.9
        Discount factor (0.9 for the bandits of Wang et al. 2018 as we read the paper; the
        Juliani reimplementation uses 0.8).
    gae_lambda : float, default 1.0
        λ of generalised advantage estimation; 1 gives ``R_t − V_t`` (Monte-Carlo returns).
    value_coef : float, default 0.5
        Weight of the value loss ``½ mean((R − V)²)``.
    entropy_coef : float or (start, end), default 0.05
        Entropy bonus, fixed or annealed linearly from ``start`` to ``end``.
    lr : float or (start, end), default (1e-2, 1e-3)
        Adam learning rate, fixed or annealed linearly from ``start`` to ``end``.
    grad_clip : float or None, default 10.0
        Clip the global gradient norm.
    normalize_advantages : bool, default True
        Standardise the advantages over the batch (zero mean, unit SD) before the policy
        loss: the same gradient direction in expectation up to a baseline shift and scale,
        with much less variance across updates.
    state_l2 : float, default 1e-3
        Add ``state_l2 · mean(h²)`` over units, trials and sessions (activity
        regularisation): keeps the states bounded, e.g. stops a ReLU network from
        counting evidence by ever-growing activity.
    noise : bool, default False
        Draw the model's recurrent noise (seeded) during training.
    seed : int, default 0
        Seeds the sessions, the choices and the noise of every update (keyed by the update
        number, so a resumed run equals an uninterrupted one): same seed and initial weights,
        same trained weights.
    device : str, default "cpu"
    progress : bool, default True
        Progress bar (always off when the ``CI`` variable is set).
    checkpoint_dir : path, optional
        Write ``<dir>/last`` every ``checkpoint_every`` updates and at the end; if a
        checkpoint is there already, resume from it (call with the same arguments: the
        annealing schedules span ``n_updates``).
    checkpoint_every : int, default 100

    Returns
    -------
    pandas.DataFrame
        One row per update: ``update, mean_reward, mean_regret`` (per trial, over the batch;
        regret exact from the true arm statistics), ``loss, policy_loss, value_loss,
        entropy, entropy_coef, lr, grad_norm, elapsed_s``.

    Raises
    ------
    TrainingDivergedError
        If the loss or the gradient norm becomes NaN or infinite.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents._meta_rl import make_meta_rl_model
    >>> net = make_meta_rl_model(n_hidden=8, seed=0)
    >>> env = paradigms.make("bandit/bernoulli", correlated=True)
    >>> hist = train_meta_rl(net, env, n_updates=3, n_sessions=4, n_trials=10, progress=False)
    >>> hist["update"].tolist()
    [1, 2, 3]
    """
    layout = meta_rl_layout(model)
    if env.n_arms != layout.n_arms:
        raise ValueError(
            f"environment {env.id!r} has n_arms = {env.n_arms} but the model was built for "
            f"{layout.n_arms} arms"
        )
    if n_steps is not None:
        _check("n_steps", n_steps, 1, integer=True)
    _check("n_updates", n_updates, 1, integer=True)
    _check("n_sessions", n_sessions, 1, integer=True)
    _check("n_trials", n_trials, 1, integer=True)
    _check("checkpoint_every", checkpoint_every, 1, integer=True)
    _check("gamma", gamma, 0.0, 1.0)
    _check("gae_lambda", gae_lambda, 0.0, 1.0)
    _check("value_coef", value_coef, 0.0)
    _check("state_l2", state_l2, 0.0)
    if grad_clip is not None:
        _check("grad_clip", grad_clip, 0.0)
    if not isinstance(seed, int | np.integer):
        raise TypeError(f"seed = {seed!r} is not allowed; give an int")
    betas = _schedule("entropy_coef", entropy_coef, int(n_updates))
    lrs = _schedule("lr", lr, int(n_updates))
    dev = resolve_device(device)
    model.to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=float(lrs[0]))
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    meta = {
        "model": model.config(),
        "paradigm": getattr(env, "describe", lambda: {"id": env.id, "kwargs": env.kwargs})(),
        "train_meta_rl": dict(
            n_updates=n_updates, n_sessions=n_sessions, n_trials=n_trials, n_steps=n_steps, gamma=gamma,
            gae_lambda=gae_lambda, normalize_advantages=normalize_advantages, state_l2=state_l2, value_coef=value_coef, entropy_coef=list(np.ravel(
                entropy_coef)), lr=list(np.ravel(lr)), grad_clip=grad_clip, noise=noise, seed=int(seed),
        ),
    }  # fmt: skip
    rows: list[dict[str, float]] = []
    start = 0
    if ckpt_dir is not None and (found := find_checkpoint(ckpt_dir)) is not None:
        saved = read_checkpoint(found, model=model, optimizer=optimizer)
        start, rows = saved["step"], saved["history"]
    t0 = time.perf_counter() - (rows[-1]["elapsed_s"] if rows else 0.0)
    S, T = int(n_sessions), int(n_trials)
    chunk = T if n_steps is None else min(int(n_steps), T)
    bar = tqdm(
        total=int(n_updates), initial=start, desc=f"meta-RL on {env.id}",
        disable=quiet_mode(not progress), leave=False,
    )  # fmt: skip
    try:
        for update in range(start + 1, int(n_updates) + 1):
            eps = None
            if noise:
                gen = seeded_torch(int(seed), 3, update)
                eps = model.sample_noise((S, T, model.n_units), generator=gen)
            loop = ClosedLoop.start(model, env, S, seeded_rng(int(seed), 1, update))
            beta, rate = float(betas[update - 1]), float(lrs[update - 1])
            for group in optimizer.param_groups:
                group["lr"] = rate
            parts = []
            agent_rng = seeded_rng(int(seed), 2, update)
            for t0_chunk in range(0, T, chunk):
                t1 = min(t0_chunk + chunk, T)
                run = loop.run(
                    t1 - t0_chunk, agent_rng,
                    None if eps is None else eps[:, t0_chunk:t1],
                )  # fmt: skip
                boot = None
                if t1 < T:
                    boot = loop.next_value(None if eps is None else eps[:, t1])
                stats = _a2c_step(
                    run, boot, optimizer, params, gamma=gamma, lam=gae_lambda,
                    value_coef=value_coef, beta=beta, grad_clip=grad_clip,
                    normalize=normalize_advantages, state_l2=state_l2, where=f"update {update}, trial {t0_chunk}",
                )  # fmt: skip
                parts.append((t1 - t0_chunk, stats, run["reward"], run["regret"]))
                loop.detach()
            weight = np.array([n for n, *_ in parts], dtype=np.float64) / T
            row = {
                "update": update,
                "mean_reward": float(np.concatenate([r for *_, r, _ in parts], 1).mean()),
                "mean_regret": float(np.concatenate([g for *_, g in parts], 1).mean()),
            }
            for key in ("loss", "policy_loss", "value_loss", "entropy", "grad_norm"):
                row[key] = float(np.dot(weight, [st[key] for _, st, *_ in parts]))
            row.update(entropy_coef=beta, lr=rate, elapsed_s=time.perf_counter() - t0)
            rows.append(row)
            bar.update(1)
            bar.set_postfix(regret=f"{row['mean_regret']:.3f}", H=f"{row['entropy']:.2f}")
            if ckpt_dir is not None and (update % checkpoint_every == 0 or update == n_updates):
                write_checkpoint(
                    ckpt_dir, model=model, optimizer=optimizer, step=update, history=rows,
                    meta=meta,
                )  # fmt: skip
    finally:
        bar.close()
    model.eval()
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
