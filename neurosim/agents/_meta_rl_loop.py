"""The closed loop of a meta-RL network and a bandit: input layout, choice sampling, runner.

Shared by the A2C trainer, :class:`~neurosim.agents.MetaRLAgent` and
:func:`~neurosim.agents.meta_rl_trajectories`, so all three encode the inputs and draw the
choices identically (inverse CDF of the float64 softmax with one uniform per session, exactly
as :meth:`BanditAgent.act`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models import RecurrentModel
from ._base import BanditEnvironment

#: The optional trial-index input is ``t / TRIAL_SCALE``.
TRIAL_SCALE = 100.0


@dataclass(frozen=True)
class MetaRLLayout:
    """How a meta-RL model's inputs and outputs are laid out.

    Inputs: ``[one_hot(previous choice) (A), previous reward (1), t / TRIAL_SCALE (optional)]``;
    outputs: ``[policy logits (A), state value (1)]``.
    """

    n_arms: int
    trial_input: bool

    @property
    def n_inputs(self) -> int:
        return self.n_arms + 1 + int(self.trial_input)

    @property
    def n_outputs(self) -> int:
        return self.n_arms + 1


def meta_rl_layout(model: RecurrentModel) -> MetaRLLayout:
    """The input/output layout of ``model``, deduced from its sizes (``n_outputs = A + 1``).

    Raises
    ------
    ValueError
        If the sizes fit no layout: ``n_outputs`` must be ``A + 1`` with ``A >= 2`` and
        ``n_inputs`` either ``A + 1`` or ``A + 2`` (with the trial-index input).
    """
    a = int(model.n_outputs) - 1
    if a < 2 or model.n_inputs not in (a + 1, a + 2):
        raise ValueError(
            f"model has n_inputs = {model.n_inputs}, n_outputs = {model.n_outputs}; a meta-RL "
            "model needs n_outputs = A + 1 (A >= 2 policy logits and one value) and n_inputs = "
            "A + 1 (one-hot previous choice, previous reward) or A + 2 (plus the trial index)"
        )
    return MetaRLLayout(n_arms=a, trial_input=model.n_inputs == a + 2)


def encode_inputs(
    layout: MetaRLLayout,
    prev_choice: np.ndarray | None,
    prev_reward: np.ndarray | None,
    trial: int,
    n_sessions: int,
) -> np.ndarray:
    """The network input of bandit trial ``trial``: float32 ``[S, n_inputs]``.

    ``prev_choice`` / ``prev_reward`` are the choices and rewards of trial ``trial − 1``
    (``None`` on the first trial: all zeros).

    Examples
    --------
    >>> encode_inputs(MetaRLLayout(3, True), np.array([2]), np.array([1.0]), 50, 1).tolist()
    [[0.0, 0.0, 1.0, 1.0, 0.5]]
    """
    x = np.zeros((n_sessions, layout.n_inputs), np.float32)
    if prev_choice is not None:
        x[np.arange(n_sessions), prev_choice] = 1.0
        x[:, layout.n_arms] = prev_reward
    if layout.trial_input:
        x[:, layout.n_arms + 1] = trial / TRIAL_SCALE
    return x


def sample_choices(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs [S, A]`` by inverse CDF, exactly as :meth:`BanditAgent.act`."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=1) < u).sum(1), probs.shape[1] - 1).astype(np.int64)


def _param(model: torch.nn.Module) -> torch.Tensor:
    return next(model.parameters())


def _check_arms(model: RecurrentModel, env: BanditEnvironment) -> MetaRLLayout:
    layout = meta_rl_layout(model)
    if env.n_arms != layout.n_arms:
        raise ValueError(
            f"environment {env.id!r} has n_arms = {env.n_arms} but the model was built for "
            f"{layout.n_arms} arms"
        )
    return layout


@dataclass
class ClosedLoop:
    """A batch of sessions in progress: the model's state and the last choice and reward.

    :meth:`run` advances it by a number of trials (with autograd unless wrapped in
    ``torch.no_grad()``), so an episode can be trained in truncated chunks.
    """

    model: RecurrentModel
    env: BanditEnvironment
    layout: MetaRLLayout
    h: torch.Tensor
    trial: int = 0
    choice: np.ndarray | None = None
    reward: np.ndarray | None = None

    @classmethod
    def start(
        cls, model: RecurrentModel, env: BanditEnvironment, n_sessions: int, env_rng: Any
    ) -> ClosedLoop:
        """Reset ``env`` to ``n_sessions`` fresh sessions and the model to its initial state."""
        layout = _check_arms(model, env)
        env.reset(int(n_sessions), env_rng)
        return cls(model, env, layout, model.initial_state(int(n_sessions)))

    def next_input(self) -> torch.Tensor:
        """The network input of the coming trial."""
        x = encode_inputs(self.layout, self.choice, self.reward, self.trial, self.h.shape[0])
        p = _param(self.model)
        return torch.from_numpy(x).to(device=p.device, dtype=p.dtype)

    def run(
        self, n_trials: int, agent_rng: np.random.Generator, noise: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Play ``n_trials`` trials; ``noise[:, k]`` (optional) is added at the k-th step.

        Returns numpy arrays ``choice, reward, regret`` ``[S, n]``, ``expected_reward
        [S, n, A]``, ``input [S, n, I]`` and tensors ``state [S, n, N]``, ``output [S, n, O]``,
        ``logp`` (log-probability of the choice made), ``entropy`` and ``value`` ``[S, n]``.
        """
        S, n, A = self.h.shape[0], int(n_trials), self.layout.n_arms
        choice = np.empty((S, n), np.int64)
        reward = np.empty((S, n))
        expected = np.empty((S, n, A))
        inputs = np.empty((S, n, self.layout.n_inputs), np.float32)
        states, outputs = [], []
        for k in range(n):
            x = self.next_input()
            inputs[:, k] = x.cpu().numpy()
            self.h = self.model.step(self.h, x, None if noise is None else noise[:, k])
            y = self.model.readout(self.h)
            states.append(self.h)
            outputs.append(y)
            probs = torch.softmax(y[:, :A].detach().double(), -1).cpu().numpy()
            expected[:, k] = self.env.expected_rewards
            self.choice = sample_choices(probs, agent_rng)
            self.reward = self.env.step(self.choice)
            choice[:, k], reward[:, k] = self.choice, self.reward
            self.trial += 1
        hs, ys = torch.stack(states, 1), torch.stack(outputs, 1)
        logp_all = torch.log_softmax(ys[..., :A], -1)
        idx = torch.from_numpy(choice).to(hs.device)[..., None]
        best = expected.max(-1)
        chosen = np.take_along_axis(expected, choice[..., None], -1)[..., 0]
        return {
            "choice": choice,
            "reward": reward,
            "expected_reward": expected,
            "regret": best - chosen,
            "input": inputs,
            "state": hs,
            "output": ys,
            "logp": logp_all.gather(-1, idx)[..., 0],
            "entropy": -(logp_all.exp() * logp_all).sum(-1),
            "value": ys[..., A],
        }

    def detach(self) -> None:
        """Cut the graph: later chunks do not backpropagate into earlier ones."""
        self.h = self.h.detach()

    def next_value(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The value head on the coming trial's state (no gradient): a bootstrap target."""
        with torch.no_grad():
            h = self.model.step(self.h, self.next_input(), noise)
            return self.model.readout(h)[:, self.layout.n_arms]


def rollout(
    model: RecurrentModel,
    env: BanditEnvironment,
    n_sessions: int,
    n_trials: int,
    env_rng: np.random.Generator,
    agent_rng: np.random.Generator,
    *,
    noise: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Run ``model`` closed-loop on ``n_sessions`` fresh sessions of ``env`` (with autograd).

    See :meth:`ClosedLoop.run` for what it returns; wrap in ``torch.no_grad()`` when no
    gradient is needed.
    """
    return ClosedLoop.start(model, env, n_sessions, env_rng).run(n_trials, agent_rng, noise)
