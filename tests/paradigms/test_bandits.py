"""Closed-loop bandit environments: registry-wide contract, exact arm statistics, dynamics."""

import json

import numpy as np
import pytest

import paradigms
from paradigms import _bandits as bandits
from paradigms import _base
from paradigms._bandit_envs import GaussianMixtureBandit, RestlessBandit

CLASSES = (
    bandits.BernoulliBandit,
    bandits.GaussianBandit,
    bandits.SwitchingBandit,
    RestlessBandit,
    GaussianMixtureBandit,
)
# every closed-loop id: ours, plus any other the registry holds (once paradigms wires them)
CLOSED_LOOP_IDS = sorted(
    {c.id for c in CLASSES}
    | {i for i in paradigms.available() if getattr(paradigms.make(i), "closed_loop", False)}
)


@pytest.fixture(scope="module", autouse=True)
def _bandits_registered():
    """Register the bandit ids for this module and restore the registry afterwards."""
    paradigms.available()  # run lazy loaders first, so the snapshot is the whole registry
    before = dict(_base._REGISTRY)
    bandits._register()
    bandits._register()  # idempotent
    yield
    _base._REGISTRY.clear()
    _base._REGISTRY.update(before)


def _run(env, seed, actions):
    """Reset with ``seed``, step through ``actions [T, S]``; expected rewards read before each
    step ``[T, S, A]`` and rewards ``[T, S]``."""
    env.reset(actions.shape[1], seed)
    means, rewards = [], []
    for a in actions:
        means.append(env.expected_rewards)
        rewards.append(env.step(a))
    return np.array(means), np.array(rewards)


# -- registry-wide contract ------------------------------------------------------------------


def test_registry_lists_the_bandits():
    ids = paradigms.available("bandit")
    assert set(ids) >= {
        "bandit/bernoulli",
        "bandit/gaussian",
        "bandit/switching",
        "bandit/daw2006",
        "bandit/sajid2021",
    }
    assert set(ids) <= set(CLOSED_LOOP_IDS)


@pytest.mark.parametrize("pid", CLOSED_LOOP_IDS)
def test_closed_loop_contract(pid):
    env = paradigms.make(pid)
    assert env.closed_loop is True and env.id == pid
    assert env.n_arms >= 2 and env.reward_kind in ("binary", "continuous")
    info = env.describe()
    assert json.loads(json.dumps(info)) == info and info["id"] == pid
    # the recorded kwargs rebuild an equal environment
    assert paradigms.make(pid, **env.kwargs).describe() == info
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(RuntimeError, match="reset"):
        _ = env.expected_rewards
    s, a = 5, env.n_arms
    env.reset(s, 11)
    assert env.trial == 0 and env.n_sessions == s
    rng = np.random.default_rng(0)
    for t in range(20):
        m, sd = env.expected_rewards, env.reward_sd
        assert m.shape == sd.shape == (s, a) and m.dtype == sd.dtype == np.float64
        assert np.isfinite(m).all() and (sd >= 0).all()
        m[:] = np.nan  # a copy: the environment is unaffected
        assert np.isfinite(env.expected_rewards).all()
        r = env.step(rng.integers(0, a, size=s))
        assert r.shape == (s,) and r.dtype == np.float64 and np.isfinite(r).all()
        if env.reward_kind == "binary":
            assert set(np.unique(r)) <= {0.0, 1.0}
        assert env.trial == t + 1
    env.reset(2, 0)
    assert env.trial == 0 and env.expected_rewards.shape == (2, a)


@pytest.mark.parametrize("pid", CLOSED_LOOP_IDS)
def test_same_seed_same_rewards_whatever_the_actions(pid):
    env = paradigms.make(pid)
    rng = np.random.default_rng(1)
    acts = rng.integers(0, env.n_arms, size=(30, 16))
    m1, r1 = _run(env, 5, acts)
    m2, r2 = _run(paradigms.make(pid), np.random.default_rng(5), acts)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(r1, r2)
    # other actions: the arms evolve identically, and an arm chosen in both runs pays the same
    other = rng.integers(0, env.n_arms, size=acts.shape)
    m3, r3 = _run(env, 5, other)
    np.testing.assert_array_equal(m1, m3)
    same = acts == other
    assert same.any() and not same.all()
    np.testing.assert_array_equal(r1[same], r3[same])
    # another seed: other payoffs
    _, r4 = _run(env, 6, acts)
    assert not np.array_equal(r1, r4)


CASES = [(pid, {}) for pid in CLOSED_LOOP_IDS] + [
    ("bandit/daw2006", {"initial_means": [-2.0, 3.0, 50.3, 99.2]}),  # near and past the bounds
    ("bandit/switching", {"probs": [0.9, 0.5, 0.1], "hazard": 0.3}),
    ("bandit/gaussian", {"means": [0.0, 2.0, -1.0], "sd": [0.5, 1.0, 3.0]}),
]


@pytest.mark.parametrize(("pid", "kw"), CASES, ids=[f"{p}{sorted(k)}" for p, k in CASES])
def test_expected_rewards_and_sd_are_those_of_the_payoffs(pid, kw):
    # expected_rewards / reward_sd read before a step are the mean / SD of its payoffs
    env = paradigms.make(pid, **kw)
    s, a = 24000, env.n_arms
    env.reset(s, 3)
    for _ in range(3):  # let switching / restless arms move first
        env.step(np.zeros(s, dtype=np.int64))
    choice = np.arange(s) % a
    m = env.expected_rewards[np.arange(s), choice]
    sd = env.reward_sd[np.arange(s), choice]
    r = env.step(choice)
    for arm in range(a):
        k = choice == arm
        n = k.sum()
        dev = r[k] - m[k]
        assert abs(dev.mean()) < 5 * np.sqrt(np.mean(sd[k] ** 2) / n) + 1e-12, arm
        sq = dev**2
        assert abs(sq.mean() - np.mean(sd[k] ** 2)) < 5 * sq.std() / np.sqrt(n) + 1e-12, arm


# -- Bernoulli ------------------------------------------------------------------------------


def test_bernoulli_frequencies_match_fixed_probs():
    probs = np.array([0.1, 0.5, 0.85])
    env = paradigms.make("bandit/bernoulli", probs=probs)
    assert env.n_arms == 3 and env.reward_kind == "binary"
    s, t = 30000, 4
    _, r = _run(env, 0, np.tile(np.arange(s) % 3, (t, 1)))
    for arm, p in enumerate(probs):
        x = r[:, arm::3]
        assert abs(x.mean() - p) < 4.5 * np.sqrt(p * (1 - p) / x.size), arm


def test_bernoulli_drawn_probs_are_uniform_and_used():
    env = paradigms.make("bandit/bernoulli", n_arms=3)
    s = 40000
    env.reset(s, 1)
    p = env.expected_rewards
    assert p.shape == (s, 3) and 0 <= p.min() and p.max() <= 1
    assert abs(p.mean() - 0.5) < 4.5 * np.sqrt(1 / 12 / p.size)
    assert abs(p.var() - 1 / 12) < 0.003
    assert abs(np.corrcoef(p[:, 0], p[:, 1])[0, 1]) < 4.5 / np.sqrt(s)
    np.testing.assert_allclose(env.reward_sd, np.sqrt(p * (1 - p)))
    # each session's own p governs its payoffs: low-p sessions win rarely, high-p often
    r = env.step(np.zeros(s, dtype=int))
    lo, hi = p[:, 0] < 0.2, p[:, 0] > 0.8
    assert r[lo].mean() < 0.12 and r[hi].mean() > 0.88


def test_correlated_bernoulli_probs_sum_to_one():
    env = paradigms.make("bandit/bernoulli", correlated=True)
    env.reset(5000, 2)
    p = env.expected_rewards
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-15)
    assert p[:, 0].min() < 0.01 and p[:, 0].max() > 0.99 and abs(p[:, 0].mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="n_arms = 2"):
        paradigms.make("bandit/bernoulli", n_arms=3, correlated=True)
    with pytest.raises(ValueError, match="summing to 1"):
        paradigms.make("bandit/bernoulli", probs=[0.3, 0.3], correlated=True)


def test_gaussian_means_drawn_standard_normal():
    env = paradigms.make("bandit/gaussian", n_arms=4, sd=2.0)
    env.reset(20000, 0)
    m = env.expected_rewards
    assert abs(m.mean()) < 4.5 / np.sqrt(m.size) and abs(m.var() - 1) < 0.03
    assert (env.reward_sd == 2.0).all()


# -- Sajid et al. 2021 ------------------------------------------------------------------------


def test_sajid2021_exact_mixture_moments():
    env = paradigms.make("bandit/sajid2021")
    env.reset(1, 0)
    # by hand: 0.97·10 + 0.03·22, and 0.97·(1 + 100) + 0.03·(1 + 484) − 10.36², …
    np.testing.assert_allclose(env.expected_rewards[0], [10.36, 16.0, 17.76], rtol=1e-13)
    var = [0.97 * 101 + 0.03 * 485 - 10.36**2, 9.0, 0.97 * 325 + 0.03 * 101 - 17.76**2]
    np.testing.assert_allclose(env.reward_sd[0] ** 2, var, rtol=1e-12)
    np.testing.assert_allclose(var, [5.1904, 9.0, 2.8624], rtol=1e-12)


def test_sajid2021_payoffs_match_mixture_moments():
    env = paradigms.make("bandit/sajid2021")
    s = 30000
    env.reset(s, 4)
    mean, sd = env.expected_rewards[0], env.reward_sd[0]
    for arm in range(3):
        r = np.concatenate([env.step(np.full(s, arm)) for _ in range(2)])
        n = r.size
        assert abs(r.mean() - mean[arm]) < 5 * sd[arm] / np.sqrt(n), arm
        sq = (r - mean[arm]) ** 2
        assert abs(sq.mean() - sd[arm] ** 2) < 5 * sq.std() / np.sqrt(n), arm
    # the rare component is drawn with its weight (arm 1: 3 % of payoffs near 22)
    r = env.step(np.zeros(s, dtype=int))
    assert abs((r > 16).mean() - 0.03) < 4.5 * np.sqrt(0.03 * 0.97 / s)


def test_mixture_arms_validated():
    env = paradigms.make("bandit/sajid2021", arms=[[(1.0, 0.0, 1.0)], [(0.5, -1, 1), (0.5, 1, 1)]])
    env.reset(1, 0)
    np.testing.assert_allclose(env.reward_sd[0], [1.0, np.sqrt(2.0)])
    with pytest.raises(ValueError, match=r"arms\[0\] weights sum to 0.9"):
        paradigms.make("bandit/sajid2021", arms=[[(0.9, 0, 1)], [(1, 0, 1)]])
    with pytest.raises(ValueError, match=r"arms\[1\]\[0\] sd = -1.0"):
        paradigms.make("bandit/sajid2021", arms=[[(1, 0, 1)], [(1, 0, -1)]])
    with pytest.raises(ValueError, match="at least 2 arms"):
        paradigms.make("bandit/sajid2021", arms=[[(1, 0, 1)]])


# -- Daw et al. 2006 --------------------------------------------------------------------------


def test_daw2006_payoffs_are_integers_in_bounds():
    env = paradigms.make("bandit/daw2006", initial_means=[-5.0, 2.0, 50.0, 104.0])
    s = 400
    env.reset(s, 0)
    r = np.array([env.step(np.arange(s) % 4) for _ in range(30)])
    assert (r == np.rint(r)).all() and r.min() == 1 and r.max() == 100


def test_daw2006_exact_moments_of_the_rounded_payoff():
    env = paradigms.make("bandit/daw2006", initial_means=[37.3, 50.0, 62.71, -60.0])
    env.reset(1, 0)
    m, sd = env.expected_rewards[0], env.reward_sd[0]
    # far from the bounds rounding keeps the mean and adds 1/12 to the variance (Sheppard)
    np.testing.assert_allclose(m[:3], [37.3, 50.0, 62.71], rtol=0, atol=1e-9)
    np.testing.assert_allclose(sd[:3], np.sqrt(16 + 1 / 12), rtol=0, atol=1e-9)
    # far below the lower bound every payoff is 1
    assert abs(m[3] - 1) < 1e-12 and sd[3] < 1e-6
    # at the bound: exact mean of max(round(x), 1) for x ~ N(1, 4²) by direct summation
    env = paradigms.make("bandit/daw2006", initial_means=1.0)
    env.reset(1, 0)
    x = np.linspace(1 - 40, 1 + 40, 800001)
    w = np.exp(-0.5 * ((x - 1) / 4) ** 2)
    pay = np.clip(np.rint(x), 1, 100)
    assert abs(env.expected_rewards[0, 0] - (pay * w).sum() / w.sum()) < 1e-4


def test_daw2006_means_revert_to_the_stationary_distribution():
    lam, theta, sd_d, mu0 = 0.9836, 50.0, 2.8, 20.0
    env = paradigms.make("bandit/daw2006", initial_means=mu0)
    s = 4000
    env.reset(s, 7)
    act = np.zeros(s, dtype=int)
    for t in range(1, 301):
        env.step(act)
        if t in (50, 300):
            mu = env.means.ravel()  # S·A independent walks
            n = mu.size
            mean_t = theta + lam**t * (mu0 - theta)
            var_t = sd_d**2 * (1 - lam ** (2 * t)) / (1 - lam**2)
            assert abs(mu.mean() - mean_t) < 5 * np.sqrt(var_t / n), t
            assert abs(mu.var() - var_t) < 5 * var_t * np.sqrt(2 / n), t
    # after 300 trials the walk is at its stationary mean θ and variance σ_d² / (1 − λ²)
    stat_var = sd_d**2 / (1 - lam**2)
    assert abs(mu.mean() - theta) < 0.5 and abs(mu.var() / stat_var - 1) < 0.05
    assert env.stationary_sd == pytest.approx(np.sqrt(stat_var))


def test_daw2006_one_step_regression_slope_is_decay():
    lam, theta, sd_d = 0.9836, 50.0, 2.8
    env = paradigms.make("bandit/daw2006")  # stationary start
    s = 4000
    env.reset(s, 8)
    first = env.means
    assert abs(first.mean() - theta) < 5 * env.stationary_sd / np.sqrt(first.size)
    assert abs(first.std() / env.stationary_sd - 1) < 0.02
    xs, ys = [], []
    for _ in range(40):
        before = env.means
        env.step(np.zeros(s, dtype=int))
        xs.append(before.ravel() - theta)
        ys.append(env.means.ravel() - theta)
    x, y = np.concatenate(xs), np.concatenate(ys)
    slope = (x * y).sum() / (x * x).sum()
    se = sd_d / np.sqrt((x * x).sum())
    assert abs(slope - lam) < 5 * se
    assert abs((y - slope * x).std() / sd_d - 1) < 0.01


# -- switching ----------------------------------------------------------------------------------


def test_switching_reversal_rate_is_the_hazard_and_moves_the_best_arm():
    probs = [0.9, 0.5, 0.1]
    hazard = 0.1
    env = paradigms.make("bandit/switching", probs=probs, hazard=hazard)
    s, t = 3000, 60
    m, _ = _run(env, 9, np.zeros((t, s), dtype=int))
    # every trial is a permutation of probs over the arms
    np.testing.assert_array_equal(np.sort(m, axis=-1), np.broadcast_to(np.sort(probs), m.shape))
    best = m.argmax(-1)  # [T, S]
    changed = (m[1:] != m[:-1]).any(-1)
    # a reversal always moves the best arm
    np.testing.assert_array_equal(changed, best[1:] != best[:-1])
    n = changed.size
    assert abs(changed.mean() - hazard) < 4.5 * np.sqrt(hazard * (1 - hazard) / n)
    # the new best arm is uniform over the other arms, and the first best arm over all arms
    shift = ((best[1:] - best[:-1]) % 3)[changed]
    assert abs((shift == 1).mean() - 0.5) < 4.5 * np.sqrt(0.25 / shift.size)
    assert abs((best[0] == 0).mean() - 1 / 3) < 4.5 * np.sqrt(2 / 9 / s)


def test_switching_limits_and_default_probs():
    for hazard, rate in ((0.0, 0.0), (1.0, 1.0)):
        env = paradigms.make("bandit/switching", hazard=hazard)
        m, _ = _run(env, 0, np.zeros((10, 50), dtype=int))
        assert ((m[1:] != m[:-1]).any(-1)).mean() == rate
        np.testing.assert_array_equal(np.sort(m, -1), np.broadcast_to([0.2, 0.8], m.shape))
    env = paradigms.make("bandit/switching", n_arms=4)
    assert env.kwargs["probs"] == [0.8, 0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="unique largest"):
        paradigms.make("bandit/switching", probs=[0.7, 0.7, 0.1])


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "kw", "exc", "pattern"),
    [
        ("bandit/switching", {"hazard": 1.5}, ValueError, r"hazard = 1.5 .*\[0, 1\]"),
        ("bandit/switching", {"hazard": "high"}, ValueError, r"hazard = 'high'"),
        ("bandit/bernoulli", {"n_arms": 1}, ValueError, r"n_arms = 1 .*\[2, inf\)"),
        ("bandit/gaussian", {"n_arms": 2.5}, ValueError, r"n_arms = 2.5 .* integer"),
        ("bandit/bernoulli", {"probs": [0.2, 1.2]}, ValueError, r"probs\[1\] = 1.2"),
        ("bandit/bernoulli", {"n_arms": 3, "probs": [0.1, 0.2]}, ValueError, "probs has 2"),
        ("bandit/bernoulli", {"correlated": "yes"}, ValueError, "correlated = 'yes'"),
        ("bandit/gaussian", {"sd": 0.0}, ValueError, r"sd = 0.0 .*\(0, inf\)"),
        ("bandit/gaussian", {"means": [1.0, 2.0], "sd": [1.0]}, ValueError, "sd = "),
        ("bandit/daw2006", {"decay": 1.2}, ValueError, "decay = 1.2"),
        ("bandit/daw2006", {"decay": 1.0}, ValueError, "initial_means"),
        ("bandit/daw2006", {"payoff_sd": 0}, ValueError, "payoff_sd = 0"),
        ("bandit/daw2006", {"low": 5, "high": 5}, ValueError, "high = 5 .* > low = 5"),
        ("bandit/daw2006", {"initial_means": [1.0, 2.0]}, ValueError, "initial_means = "),
        ("bandit/gaussian", {"hazard": 0.1}, TypeError, "hazard"),
    ],
)
def test_bad_kwargs_name_the_field_and_value(pid, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        paradigms.make(pid, **kw)


def test_bad_actions_and_sessions_name_the_field_and_value():
    env = paradigms.make("bandit/bernoulli", probs=[0.5, 0.5, 0.5])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="n_sessions = 0"):
        env.reset(0, 0)
    with pytest.raises(TypeError, match="rng"):
        env.reset(2, "seed")
    env.reset(4, 0)
    with pytest.raises(ValueError, match=r"actions\[2\] = 3 is out of range; arms are 0..2"):
        env.step(np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"actions\[0\] = -1"):
        env.step(np.array([-1, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"shape \(3,\); it must be \(4,\)"):
        env.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(4, 1\)"):
        env.step(np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError, match="integer arm indices, got dtype float64"):
        env.step(np.array([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="got dtype bool"):
        env.step(np.array([True, False, True, False]))
    assert env.trial == 0  # rejected actions do not advance the environment
    assert env.step([0, 1, 2, 0]).shape == (4,)  # a list of ints is fine
    assert env.trial == 1
