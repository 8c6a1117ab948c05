"""The bandit-agent contract, the closed-loop runner and the argmax quadrature."""

import numpy as np
import pytest

import paradigms
from neurosim.agents import BanditAgent, RandomAgent, choices_frame, run_bandit
from neurosim.agents._quadrature import gaussian_argmax_probabilities


class Greedy(BanditAgent):
    """Sample-average greedy agent with one parameter, for contract tests."""

    name = "greedy"
    param_names = ("prior",)
    defaults = {"prior": 0.5}
    param_domain = {"prior": (0.0, 1.0)}

    def _reset(self):
        self.total = np.zeros((self.n_sessions, self.n_arms))
        self.count = np.zeros((self.n_sessions, self.n_arms))

    def choice_probabilities(self):
        value = (self.total + self.p["prior"][:, None]) / (self.count + 1)
        best = value == value.max(1, keepdims=True)
        return best / best.sum(1, keepdims=True)

    def _update(self, choices, rewards):
        rows = np.arange(self.n_sessions)
        self.total[rows, choices] += rewards
        self.count[rows, choices] += 1

    def state(self):
        return {"value": (self.total + self.p["prior"][:, None]) / (self.count + 1)}


def test_random_agent_regret_matches_the_expected_gap():
    env = paradigms.make("bandit/bernoulli", probs=[0.2, 0.9])
    ds = run_bandit(RandomAgent(), env, 400, 50, seed=3)
    # a uniform chooser loses (0.9 − 0.2) / 2 per trial in expectation
    per_trial = ds["regret"].mean().item()
    assert per_trial == pytest.approx(0.35, abs=4 * 0.35 / np.sqrt(400 * 50))
    np.testing.assert_array_equal(ds["best_arm"], 1)
    np.testing.assert_allclose(ds["p_choice"], 0.5)


def test_same_seed_same_run_and_states_recorded_before_the_choice():
    env = paradigms.make("bandit/gaussian", n_arms=3)
    a = run_bandit(Greedy(prior=np.linspace(0, 1, 5)), env, 5, 30, seed=11)
    b = run_bandit(Greedy(prior=np.linspace(0, 1, 5)), env, 5, 30, seed=11)
    c = run_bandit(Greedy(prior=np.linspace(0, 1, 5)), env, 5, 30, seed=12)
    np.testing.assert_array_equal(a["choice"], b["choice"])
    np.testing.assert_array_equal(a["reward"], b["reward"])
    assert not np.array_equal(a["reward"], c["reward"])
    np.testing.assert_array_equal(a["param_prior"], np.linspace(0, 1, 5))
    # trial 0's value is the prior: nothing learnt yet
    np.testing.assert_allclose(
        a["value"].isel(trial=0).values, np.repeat(np.linspace(0, 1, 5)[:, None], 3, axis=1)
    )
    # the greedy choice is an arg-max of the recorded value (ties split in p_choice)
    chosen = np.take_along_axis(a["value"].values, a["choice"].values[..., None], -1)[..., 0]
    np.testing.assert_allclose(chosen, a["value"].values.max(-1))


def test_act_follows_choice_probabilities():
    class Fixed(RandomAgent):
        def choice_probabilities(self):
            return np.tile([0.1, 0.6, 0.3], (self.n_sessions, 1))

    agent = Fixed()
    agent.reset(20000, 3, rng=0)
    freq = np.bincount(agent.act(), minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=4 * np.sqrt(0.25 / 20000))


def test_choices_frame_round_trip():
    ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 3, 4, seed=0)
    df = choices_frame(ds)
    assert len(df) == 12
    np.testing.assert_array_equal(
        df.pivot(index="session", columns="trial", values="choice"), ds["choice"]
    )
    np.testing.assert_array_equal(
        df.pivot(index="session", columns="trial", values="reward"), ds["reward"]
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior": 2.0}, r"prior = 2\.0 is not allowed; it must lie in \[0\.0, 1\.0\]"),
        ({"prior": float("nan")}, "prior = nan is not allowed"),
        ({"temperature": 1.0}, r"unknown parameter\(s\) \['temperature'\]"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Greedy(**kwargs)


def test_bad_runs_and_updates_name_the_field():
    env = paradigms.make("bandit/bernoulli")
    with pytest.raises(ValueError, match="prior has 3 values but there are n_sessions = 4"):
        run_bandit(Greedy(prior=[0.1, 0.2, 0.3]), env, 4, 5)
    with pytest.raises(ValueError, match="n_trials = 0 is not allowed"):
        run_bandit(RandomAgent(), env, 4, 0)
    agent = Greedy()
    agent.reset(2, 2, rng=0)
    with pytest.raises(ValueError, match=r"choices must be integers in \[0, 1\]"):
        agent.update(np.array([0, 2]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="must have shape"):
        agent.update(np.array([0]), np.array([1.0]))


def test_argmax_probabilities_against_monte_carlo_and_exact_pairs():
    rng = np.random.default_rng(0)
    mean, sd = np.array([0.0, 0.1, 0.2, 3.0]), np.array([0.001, 0.01, 2.0, 0.05])
    draws = rng.normal(mean, sd, (400_000, 4))
    freq = np.bincount(draws.argmax(1), minlength=4) / len(draws)
    np.testing.assert_allclose(gaussian_argmax_probabilities(mean, sd), freq, atol=2e-3)
    # two arms: exact Φ((m0 − m1)/√(s0² + s1²)); symmetric arms split evenly
    from scipy.stats import norm

    p = gaussian_argmax_probabilities(np.array([[1.0, 0.0]]), np.array([[1.0, 2.0]]))
    assert p[0, 0] == pytest.approx(norm.cdf(1 / np.sqrt(5)), abs=1e-12)
    p3 = gaussian_argmax_probabilities(np.zeros(3), np.ones(3))
    np.testing.assert_allclose(p3, 1 / 3, atol=1e-6)
    with pytest.raises(ValueError, match="sd finite and > 0"):
        gaussian_argmax_probabilities(np.zeros(3), np.array([1.0, 0.0, 1.0]))
