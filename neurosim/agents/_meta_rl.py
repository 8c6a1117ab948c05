"""Meta-RL recurrent agents (Wang et al. 2018): a neurosim model as a bandit policy.

A recurrent network receives, on bandit trial ``t``, the one-hot of its previous choice and the
previous reward (zeros on the first trial; optionally also the trial index ``t / 100``) and
outputs ``A`` policy logits and one state value. Trained by advantage actor-critic across a
distribution of bandits (:func:`neurosim.agents.train_meta_rl`), it learns to explore and
exploit through its recurrent dynamics alone, with fixed weights.

One model step is one bandit trial. The model's ``dt`` is therefore the nominal duration of a
bandit trial: :func:`make_meta_rl_model` uses ``dt = tau = 1000`` ms (α = 1, the discrete-time
"vanilla" RNN ``h ← W φ(h) + W_in x + b``), and :func:`meta_rl_trajectories` labels ``time`` in
steps of the model's ``dt``, so the trajectories line up with what ``analyses`` (Lyapunov
spectra, fixed points) compute from the model's ``step``.

Everything that runs the closed loop (training, :class:`MetaRLAgent`, the trajectories) draws
choices the same way as :meth:`BanditAgent.act` (inverse CDF of the float64 softmax with one
uniform per session), so :func:`meta_rl_trajectories` and :func:`run_bandit` with
:class:`MetaRLAgent` make identical choices for the same seed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .._simulate import package_versions
from .._trajectories import build_trajectories
from ..models import RateRNN, RecurrentModel
from ._base import BanditAgent, BanditEnvironment, _seeds
from ._meta_rl_loop import TRIAL_SCALE as TRIAL_SCALE
from ._meta_rl_loop import ClosedLoop as ClosedLoop
from ._meta_rl_loop import MetaRLLayout as MetaRLLayout
from ._meta_rl_loop import _param, encode_inputs, rollout
from ._meta_rl_loop import meta_rl_layout as meta_rl_layout

#: Nominal duration of one bandit trial (one model step) in ms.
TRIAL_MS = 1000.0


def make_meta_rl_model(
    n_arms: int = 2,
    n_hidden: int = 48,
    *,
    activation: Any = "relu",
    trial_input: bool = False,
    tau: float = TRIAL_MS,
    dt: float = TRIAL_MS,
    gain: float = 1.0,
    policy_init_scale: float = 0.1,
    seed: int = 0,
) -> RateRNN:
    """A :class:`~neurosim.models.RateRNN` laid out as a meta-RL agent.

    Parameters
    ----------
    n_arms : int, default 2
    n_hidden : int, default 48
        Wang et al. (2018) used 48 LSTM units; here they are rate units.
    activation : str or module, default "relu"
        Any activation :class:`RateRNN` takes.
    trial_input : bool, default False
        Add the trial index ``t / 100`` as an input.
    tau, dt : float, default 1000
        In ms; ``dt`` is one bandit trial, ``dt = tau`` gives a discrete-time RNN.
    gain : float, default 1.0
        Orthogonal recurrent initialisation gain.
    policy_init_scale : float, default 0.1
        The policy rows of the readout are scaled by this at initialisation, so the untrained
        policy is close to uniform.
    seed : int, default 0
        Seeds the initial weights (torch's global generator is left untouched).

    Returns
    -------
    RateRNN
        ``n_inputs = n_arms + 1 (+1)``, ``n_outputs = n_arms + 1``, no recurrent noise.

    Examples
    --------
    >>> net = make_meta_rl_model(n_arms=2, n_hidden=16, seed=0)
    >>> net.n_inputs, net.n_outputs, meta_rl_layout(net)
    (3, 3, MetaRLLayout(n_arms=2, trial_input=False))
    """
    if isinstance(n_arms, bool) or not isinstance(n_arms, int | np.integer) or n_arms < 2:
        raise ValueError(f"n_arms = {n_arms!r} is not allowed; give an integer >= 2")
    layout = MetaRLLayout(int(n_arms), bool(trial_input))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = RateRNN(
            layout.n_inputs, n_hidden, layout.n_outputs,
            activation=activation, tau=tau, dt=dt, sigma_rec=0.0, gain=gain,
        )  # fmt: skip
    with torch.no_grad():
        model.w_out[: layout.n_arms].mul_(float(policy_init_scale))
    return model


class MetaRLAgent(BanditAgent):
    """A trained meta-RL network as a bandit agent (no fittable parameters).

    The network's state is carried across trials: after each ``update(choices, rewards)`` the
    pair is fed as the next input, and :meth:`choice_probabilities` is the softmax of the
    policy logits. All learning within a session happens in the recurrent state; the weights
    are fixed. Runs in :func:`neurosim.agents.run_bandit` like any other agent.

    Parameters
    ----------
    model : RecurrentModel
        A meta-RL model (see :func:`make_meta_rl_model`, :func:`train_meta_rl`); any model of
        the neurosim contract with the meta-RL input/output layout.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import run_bandit
    >>> agent = MetaRLAgent(make_meta_rl_model(n_hidden=8, seed=0))
    >>> env = paradigms.make("bandit/bernoulli", correlated=True)
    >>> ds = run_bandit(agent, env, n_sessions=4, n_trials=5, seed=0)
    >>> ds["p_choice"].sum("arm").values.round(12).min()
    np.float64(1.0)
    """

    name = "meta_rl"

    def __init__(self, model: RecurrentModel) -> None:
        super().__init__()
        self.layout = meta_rl_layout(model)
        self.model = model
        self._h: torch.Tensor | None = None
        self._t = 0

    def _reset(self) -> None:
        if self.n_arms != self.layout.n_arms:
            raise ValueError(
                f"n_arms = {self.n_arms} but the model was built for {self.layout.n_arms} arms"
            )
        self._t = 0
        with torch.no_grad():
            h0 = self.model.initial_state(self.n_sessions)
            self._h = self._step(h0, encode_inputs(self.layout, None, None, 0, self.n_sessions))

    def _step(self, h: torch.Tensor, x: np.ndarray) -> torch.Tensor:
        p = _param(self.model)
        return self.model.step(h, torch.from_numpy(x).to(device=p.device, dtype=p.dtype))

    def _readout(self) -> torch.Tensor:
        if self._h is None:
            raise RuntimeError("MetaRLAgent: call reset(n_sessions, n_arms, rng) first")
        with torch.no_grad():
            return self.model.readout(self._h).double().cpu()

    def choice_probabilities(self) -> np.ndarray:
        return torch.softmax(self._readout()[:, : self.n_arms], -1).numpy()

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        self._t += 1
        x = encode_inputs(self.layout, choices, rewards, self._t, self.n_sessions)
        with torch.no_grad():
            self._h = self._step(self._h, x)

    def state(self) -> dict[str, np.ndarray]:
        """``logit``: the policy logits ``[S, A]`` before the trial's choice."""
        return {"logit": self._readout()[:, : self.n_arms].numpy()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model.config()}

    def __repr__(self) -> str:
        return f"MetaRLAgent({type(self.model).__name__}, n_arms={self.layout.n_arms})"


def meta_rl_trajectories(
    model: RecurrentModel,
    env: BanditEnvironment,
    n_sessions: int,
    n_trials: int,
    seed: int = 0,
    *,
    dt: float | None = None,
) -> xr.Dataset:
    """Run a meta-RL model closed-loop and return its trajectories in the neurosim schema.

    A bandit session is a ``trial`` of the trajectory schema and a bandit trial a ``time``
    step, so ``neurosim.save`` / ``load`` and ``analyses`` (``compute_pca``, fixed points,
    Lyapunov spectra on the model's ``step``) apply unchanged. Choices are drawn exactly as
    :func:`run_bandit` with :class:`MetaRLAgent` draws them for the same ``seed``.

    Parameters
    ----------
    model : RecurrentModel
        A meta-RL model.
    env : closed-loop bandit
        E.g. ``paradigms.make("bandit/bernoulli", correlated=True)``.
    n_sessions, n_trials : int
    seed : int, default 0
    dt : float, optional
        Duration of one bandit trial in ms; the model's ``dt`` (1000 ms for
        :func:`make_meta_rl_model`) by default.

    Returns
    -------
    xarray.Dataset
        Dims ``trial`` (session), ``time`` (bandit trial, ms), ``unit``, ``input_channel``
        (one-hot previous choice, previous reward[, trial index]), ``output_channel`` (policy
        logits, value). ``state``, ``input``, ``output``; ``target`` = the best arm (class
        ids); ``mask`` and ``valid`` all ones. Covariates over ``trial, time``: ``choice``,
        ``reward``, ``regret``, ``p_best`` (the policy's probability of the best arm),
        ``expected_reward`` (``trial, time, arm``). Trial coordinates:
        ``session``, ``p_arm<k>`` (expected reward of arm ``k`` on the first trial), and
        ``best_arm``. ``attrs`` hold paradigm id and kwargs, the model config, seed,
        ``n_arms`` and ``trial_input``.

    Examples
    --------
    >>> import paradigms, analyses
    >>> env = paradigms.make("bandit/bernoulli", correlated=True)
    >>> ds = meta_rl_trajectories(make_meta_rl_model(n_hidden=8), env, 6, 10, seed=0)
    >>> ds.state.dims, float(ds.time[1])
    (('trial', 'time', 'unit'), 1000.0)
    >>> analyses.compute_pca(ds, n_components=2).projection.shape
    (6, 10, 2)
    """
    for field, value in (("n_sessions", n_sessions), ("n_trials", n_trials)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{field} = {value!r} is not allowed; give an integer >= 1")
    layout = meta_rl_layout(model)
    env_rng, agent_rng = _seeds(int(seed))
    with torch.no_grad():
        run = rollout(model, env, n_sessions, n_trials, env_rng, agent_rng)
    S, T, A = int(n_sessions), int(n_trials), layout.n_arms
    output = run["output"].float().cpu().numpy()
    probs = torch.softmax(run["output"][..., :A].double(), -1).cpu().numpy()
    expected = run["expected_reward"]
    best = expected.argmax(-1)
    trials = pd.DataFrame({"session": np.arange(S)})
    for k in range(A):
        trials[f"p_arm{k}"] = expected[:, 0, k]
    trials["best_arm"] = best[:, 0]
    ds = build_trajectories(
        state=run["state"].float().cpu().numpy(),
        inputs=run["input"],
        outputs=output,
        targets=best.astype(np.int64),
        mask=np.ones((S, T), np.float32),
        valid=np.ones((S, T), bool),
        dt=float(model.dt if dt is None else dt),
        trials=trials,
        unit_coords=model.unit_coords(),
        attrs={
            "paradigm": env.id,
            "paradigm_kwargs": json.dumps(env.kwargs, sort_keys=True, default=str),
            "model": json.dumps(model.config(), sort_keys=True),
            "seed": int(seed),
            "n_arms": A,
            "trial_input": json.dumps(layout.trial_input),
            "versions": json.dumps(package_versions(), sort_keys=True),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
        covariates={
            "choice": run["choice"],
            "reward": run["reward"],
            "regret": run["regret"],
            "p_best": np.take_along_axis(probs, best[..., None], -1)[..., 0],
            "expected_reward": expected,
        },
    )
    if not math.isfinite(float(ds["state"].sum())):
        raise FloatingPointError("the model's states became NaN or infinite")
    return ds.rename_dims({"expected_reward_dim2": "arm"}).assign_coords(arm=np.arange(A))
