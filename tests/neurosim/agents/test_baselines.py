"""Baseline bandit agents: learning rules against hand computations, exact choice probabilities."""

import numpy as np
import pytest
from scipy import integrate, special, stats

import paradigms
from neurosim.agents import run_bandit
from neurosim.agents._baselines import (
    UCB1,
    EpsilonGreedy,
    SoftmaxQ,
    ThompsonBeta,
    ThompsonGaussian,
    beta_argmax_probabilities,
)
from neurosim.agents._kalman import KalmanSoftmax

ALL = [
    (EpsilonGreedy, {"epsilon": 0.2, "learning_rate": 0.4}),
    (SoftmaxQ, {"learning_rate": 0.4, "beta": 3.0}),
    (UCB1, {"c": 0.5}),
    (ThompsonBeta, {}),
    (ThompsonGaussian, {"prior_mean": 0.5, "prior_sd": 0.5, "obs_sd": 0.5}),
    (KalmanSoftmax, {"beta": 2.0, "prior_mean": 0.5, "prior_sd": 0.5, "obs_sd": 0.5,
                     "decay_center": 0.5, "diffusion_sd": 0.05, "bonus": 0.5}),
]  # fmt: skip


def _history(agent, n_trials, rng, n_arms=3):
    """Drive ``agent`` with random choices and 0/1 rewards; return it."""
    S = agent.n_sessions
    for _ in range(n_trials):
        c = rng.integers(0, n_arms, S)
        agent.update(c, (rng.random(S) < 0.3 + 0.2 * c).astype(float))
    return agent


def test_softmax_q_one_update_is_the_delta_rule_per_session():
    alpha = np.array([0.1, 0.5, 1.0])
    agent = SoftmaxQ(learning_rate=alpha, beta=2.0, initial_value=0.2)
    agent.reset(3, 2, rng=0)
    agent.update(np.array([0, 1, 0]), np.array([1.0, -1.0, 0.0]))
    q = agent.state()["value"]
    np.testing.assert_allclose(q[:, 0], [0.2 + 0.1 * 0.8, 0.2, 0.0])
    np.testing.assert_allclose(q[:, 1], [0.2, 0.2 + 0.5 * (-1.2), 0.2])
    p = agent.choice_probabilities()
    np.testing.assert_allclose(p[:, 0], 1 / (1 + np.exp(-2.0 * (q[:, 0] - q[:, 1]))))


def test_epsilon_greedy_splits_ties_and_mixes_uniformly():
    agent = EpsilonGreedy(epsilon=np.array([0.0, 0.3]), learning_rate=0.5)
    agent.reset(2, 4, rng=0)
    np.testing.assert_allclose(agent.choice_probabilities(), 0.25)  # all tied
    agent.update(np.array([1, 1]), np.array([1.0, 1.0]))
    agent.update(np.array([2, 2]), np.array([1.0, 1.0]))
    agent.update(np.array([2, 2]), np.array([0.0, 0.0]))  # Q2 = 0.25, Q1 = 0.5
    p = agent.choice_probabilities()
    np.testing.assert_allclose(p[0], [0, 1, 0, 0])
    np.testing.assert_allclose(p[1], [0.075, 0.075 + 0.7, 0.075, 0.075])
    agent.update(np.array([2, 2]), np.array([1.5, 1.5]))  # Q2 = 0.25 + 0.5 × 1.25 = 0.875
    agent.update(np.array([1, 1]), np.array([1.25, 1.25]))  # Q1 = 0.5 + 0.5 × 0.75 = 0.875
    np.testing.assert_allclose(agent.choice_probabilities()[0], [0, 0.5, 0.5, 0])


def test_ucb1_tries_untried_arms_first_then_follows_the_bound():
    agent = UCB1(c=1.0)
    agent.reset(1, 3, rng=0)
    np.testing.assert_allclose(agent.choice_probabilities(), [[1 / 3] * 3])
    agent.update(np.array([1]), np.array([1.0]))
    np.testing.assert_allclose(agent.choice_probabilities(), [[0.5, 0.0, 0.5]])
    agent.update(np.array([0]), np.array([0.0]))
    np.testing.assert_allclose(agent.choice_probabilities(), [[0.0, 0.0, 1.0]])
    agent.update(np.array([2]), np.array([0.5]))
    agent.update(np.array([1]), np.array([0.0]))  # arm 1: mean 0.5 over 2 pulls; t = 4
    ucb = np.array([0.0, 0.5, 0.5]) + np.sqrt(2 * np.log(4) / np.array([1, 2, 1]))
    assert agent.choice_probabilities()[0].argmax() == ucb.argmax() == 2
    assert agent.choice_probabilities()[0].max() == 1.0


def test_kalman_gain_and_variance_recursion_by_hand():
    lam, theta, sd_d, sd_o = 0.9, 40.0, 2.0, 3.0
    agent = KalmanSoftmax(beta=0.2, decay=lam, decay_center=theta, diffusion_sd=sd_d,
                          obs_sd=sd_o, prior_mean=50.0, prior_sd=5.0)  # fmt: skip
    agent.reset(1, 2, rng=0)
    mu, var = np.array([50.0, 50.0]), np.array([25.0, 25.0])
    for choice, reward in [(0, 60.0), (0, 55.0), (1, 30.0)]:
        k = var[choice] / (var[choice] + sd_o**2)
        mu[choice] += k * (reward - mu[choice])
        var[choice] *= 1 - k
        mu, var = lam * mu + (1 - lam) * theta, lam**2 * var + sd_d**2
        agent.update(np.array([choice]), np.array([reward]))
        np.testing.assert_allclose(agent.state()["value"][0], mu)
        np.testing.assert_allclose(agent.state()["sd"][0] ** 2, var)
    p = np.exp(0.2 * mu) / np.exp(0.2 * mu).sum()
    np.testing.assert_allclose(agent.choice_probabilities()[0], p)


def test_kalman_bonus_adds_phi_times_sd():
    agent = KalmanSoftmax(beta=1.0, bonus=0.5)
    agent.reset(1, 2, rng=0)
    agent.update(np.array([0]), np.array([50.0]))  # arm 0 now less uncertain
    s = agent.state()
    u = s["value"][0] + 0.5 * s["sd"][0]
    np.testing.assert_allclose(agent.choice_probabilities()[0], special.softmax(u))


def _beta_reference(a, b):
    out = []
    for k in range(len(a)):

        def f(x, k=k):
            others = np.prod([special.betainc(a[j], b[j], x) for j in range(len(a)) if j != k])
            return stats.beta.pdf(x, a[k], b[k]) * others

        out.append(integrate.quad(f, 0, 1, epsabs=1e-12, epsrel=1e-12, limit=400)[0])
    return np.array(out)


@pytest.mark.parametrize(
    "a,b",
    [
        ([2.0, 1.0], [1.0, 1.0]),
        ([30.0, 3.0, 12.0], [10.0, 1.0, 40.0]),
        ([1.0, 2.0, 250.0, 5.0], [300.0, 2.0, 240.0, 5.0]),
        ([1.5, 7.3, 2.2], [1.2, 9.9, 3.0]),
    ],
)
def test_beta_argmax_probabilities_match_adaptive_quadrature(a, b):
    a, b = np.array(a), np.array(b)
    np.testing.assert_allclose(beta_argmax_probabilities(a, b), _beta_reference(a, b), atol=1e-6)


def test_thompson_beta_probabilities_match_its_sampling_frequencies():
    agent = ThompsonBeta()
    agent.reset(1, 3, rng=0)
    for c, r in [(0, 1), (0, 1), (0, 0), (1, 0), (1, 1), (2, 0)]:
        agent.update(np.array([c]), np.array([float(r)]))
    p = agent.choice_probabilities()[0]
    n = 100_000
    big = ThompsonBeta()
    big.reset(n, 3, rng=1)
    big.a[:], big.b[:] = agent.a[0], agent.b[0]
    freq = np.bincount(big.act(), minlength=3) / n
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(0.25 / n))
    assert abs(p.sum() - 1) < 1e-12


def test_thompson_beta_rejects_non_bernoulli_rewards():
    agent = ThompsonBeta()
    agent.reset(2, 2, rng=0)
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\].*got reward 3.0"):
        agent.update(np.array([0, 1]), np.array([1.0, 3.0]))


def test_thompson_gaussian_is_the_conjugate_posterior():
    agent = ThompsonGaussian(prior_mean=1.0, prior_sd=2.0, obs_sd=1.0)
    agent.reset(1, 2, rng=0)
    rewards = [3.0, 0.5, 2.0]
    for r in rewards:
        agent.update(np.array([1]), np.array([r]))
    precision = 1 / 4 + len(rewards)
    mean = (1 / 4 * 1.0 + sum(rewards)) / precision
    np.testing.assert_allclose(agent.state()["value"][0], [1.0, mean])
    np.testing.assert_allclose(agent.state()["sd"][0], [2.0, precision**-0.5])
    d = (1.0 - mean) / np.sqrt(4 + 1 / precision)
    np.testing.assert_allclose(agent.choice_probabilities()[0, 0], special.ndtr(d))


@pytest.mark.parametrize("cls,params", ALL, ids=[c.__name__ for c, _ in ALL])
def test_probabilities_sum_to_one_and_act_follows_them(cls, params):
    rng = np.random.default_rng(3)
    agent = cls(**params)
    agent.reset(1, 3, rng=0)
    _history(agent, 8, rng)
    p = agent.choice_probabilities()[0]
    assert np.all(p >= 0) and abs(p.sum() - 1) < 1e-12
    n = 20_000
    big = cls(**params)
    big.reset(n, 3, rng=5)
    _history(big, 0, rng)
    # copy the one session's state into every session of the big agent
    for name, value in vars(agent).items():
        if isinstance(value, np.ndarray) and value.shape[:1] == (1,) and name != "params":
            setattr(big, name, np.repeat(value, n, axis=0))
    if hasattr(agent, "t"):
        big.t = agent.t
    for name, value in agent.state().items():
        np.testing.assert_array_equal(big.state()[name][-1], value[0])
    freq = np.bincount(big.act(), minlength=3) / n
    np.testing.assert_allclose(freq, p, atol=4.5 * np.sqrt(0.25 / n))


@pytest.mark.parametrize("cls,params", [ALL[1], ALL[5]], ids=["SoftmaxQ", "KalmanSoftmax"])
def test_log_probabilities_are_the_log_of_the_probabilities(cls, params):
    agent = cls(**params)
    agent.reset(4, 3, rng=0)
    _history(agent, 5, np.random.default_rng(0))
    np.testing.assert_allclose(
        agent.log_choice_probabilities(), np.log(agent.choice_probabilities()), atol=1e-12
    )


@pytest.mark.parametrize("cls,params", ALL, ids=[c.__name__ for c, _ in ALL])
def test_each_agent_runs_on_a_bandit_and_records_its_state(cls, params):
    ds = run_bandit(cls(**params), paradigms.make("bandit/bernoulli", n_arms=3), 6, 20, seed=0)
    assert ds["choice"].shape == (6, 20) and "value" in ds
    np.testing.assert_allclose(ds["p_choice"].sum("arm"), 1.0, atol=1e-9)
    again = run_bandit(cls(**params), paradigms.make("bandit/bernoulli", n_arms=3), 6, 20, seed=0)
    np.testing.assert_array_equal(ds["choice"], again["choice"])


def test_parameter_domains_are_enforced_with_a_clear_error():
    with pytest.raises(ValueError, match="epsilon = 1.5 is not allowed"):
        EpsilonGreedy(epsilon=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        SoftmaxQ(learning_rate=[0.1, -0.2])
    with pytest.raises(ValueError, match="prior_a"):
        ThompsonBeta(prior_a=0.5)


def test_kalman_tracks_the_restless_arms_better_than_chance():
    env = paradigms.make("bandit/daw2006")
    ds = run_bandit(KalmanSoftmax(), env, 50, 150, seed=0)
    # the posterior means follow the true means: error well below the arms' spread (15 points)
    err = np.abs(ds["value"] - ds["expected_reward"]).isel(trial=slice(20, None))
    chosen_err = float(err.mean())
    assert chosen_err < 12.0
    assert float((ds["choice"] == ds["best_arm"]).mean()) > 0.4  # chance: 0.25
