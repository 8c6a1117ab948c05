"""Choice-data validation, the replay likelihood, maximum-likelihood fits and model comparison."""

import functools

import numpy as np
import pandas as pd
import pytest

import paradigms
from neurosim.agents import BanditAgent, choices_frame, run_bandit
from neurosim.agents._baselines import EpsilonGreedy, SoftmaxQ, ThompsonBeta
from neurosim.agents._choice_data import choice_arrays, validate_choice_data
from neurosim.agents._fit import compare_models, fit_agent, log_likelihood
from neurosim.agents._kalman import KalmanSoftmax


def _frame(**cols):
    base = {"session": [0, 0, 0], "trial": [0, 1, 2], "choice": [0, 1, 1],
            "reward": [1.0, 0.0, 1.0]}  # fmt: skip
    base.update(cols)
    return pd.DataFrame(base)


@functools.cache
def _softmax_data(n_sessions=40, n_trials=150, seed=0):
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0.1, 0.8, n_sessions)
    beta = rng.uniform(1.0, 8.0, n_sessions)
    env = paradigms.make("bandit/switching", hazard=0.05)
    ds = run_bandit(SoftmaxQ(learning_rate=lr, beta=beta), env, n_sessions, n_trials, seed=seed)
    return choices_frame(ds), lr, beta


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame,match",
    [
        (_frame().drop(columns="reward"), r"lack column\(s\) \['reward'\]"),
        (_frame(choice=[0, 1.5, 1]), r"'choice' must hold integers; found 1.5 at row 1"),
        (_frame(choice=[0, "left", 1]), r"'choice' must hold numbers; found 'left' at row 1"),
        (_frame(choice=[0, -1, 1]), r"'choice' must lie in \[0, 1\].*found -1 at row 1"),
        (_frame(reward=[1.0, np.nan, 0.0]), r"'reward' has a missing or infinite value.*row 1"),
        (_frame(reward=[1.0, 0.0, np.inf]), r"'reward' has a missing or infinite value.*row 2"),
        (_frame(trial=[0, 1, 1]), r"\(session, trial\) = \(0, 1\) appears more than once, at rows \[1, 2\]"),
        (_frame(trial=[0, 1, 3]), r"not consecutive: trial 1 \(row 1\) is followed by trial 3"),
        (_frame(session=[0, None, 0]), r"'session' has a missing value at row 1"),
        (_frame().iloc[:0], "empty"),
    ],
)  # fmt: skip
def test_validation_names_the_column_value_and_row(frame, match):
    with pytest.raises(ValueError, match=match):
        validate_choice_data(frame)


def test_validation_checks_choices_against_n_arms_and_types():
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\] \(n_arms = 3\); found 3 at row 2"):
        validate_choice_data(_frame(choice=[0, 1, 3]), n_arms=3)
    with pytest.raises(TypeError, match="DataFrame or a path"):
        validate_choice_data([1, 2, 3])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_choice_data("no/such/file.csv")


def test_validation_sorts_keeps_every_row_and_reads_csv(tmp_path):
    df = pd.DataFrame({"session": ["b", "a", "b", "a"], "trial": [6, 1, 5, 0],
                       "choice": [1.0, 0, 0, 2], "reward": [1, 0, 0, 1], "rt": [0.4, 0.5, 0.6, 0.7]})  # fmt: skip
    clean = validate_choice_data(df)
    assert clean["session"].tolist() == ["a", "a", "b", "b"]
    assert clean["trial"].tolist() == [0, 1, 5, 6]
    assert clean["rt"].tolist() == [0.7, 0.5, 0.6, 0.4]  # extra columns travel with their rows
    assert clean["choice"].dtype == np.int64 and clean.attrs["n_arms"] == 3
    path = tmp_path / "choices.csv"
    df.to_csv(path, index=False)
    pd.testing.assert_frame_equal(validate_choice_data(path), clean)


def test_ragged_sessions_are_padded_masked_and_ignored_by_the_likelihood():
    df, _, _ = _softmax_data()
    short = df[~((df["session"] == 1) & (df["trial"] >= 40))]
    arr = choice_arrays(short)
    assert arr.choices.shape == (40, 150)
    assert arr.n_trials[1] == 40 and arr.mask[1, :40].all() and not arr.mask[1, 40:].any()
    ll = log_likelihood(SoftmaxQ, short, learning_rate=0.3, beta=3.0)
    alone = log_likelihood(SoftmaxQ, short[short["session"] == 1], learning_rate=0.3, beta=3.0)
    assert ll[1] == pytest.approx(alone[0], abs=1e-12)
    full = log_likelihood(SoftmaxQ, df, learning_rate=0.3, beta=3.0)
    assert ll[1] > full[1]  # fewer trials: fewer negative terms
    np.testing.assert_allclose(np.delete(ll, 1), np.delete(full, 1))


# -- the likelihood ---------------------------------------------------------------------------
def test_log_likelihood_of_three_trials_by_hand():
    a, b = 0.4, 2.0
    df = _frame(choice=[0, 1, 0], reward=[1.0, 0.5, 0.0])
    q = np.zeros(2)
    total = 0.0
    for c, r in zip([0, 1, 0], [1.0, 0.5, 0.0], strict=True):
        p = np.exp(b * q) / np.exp(b * q).sum()
        total += np.log(p[c])
        q[c] += a * (r - q[c])
    assert log_likelihood(SoftmaxQ, df, learning_rate=a, beta=b)[0] == pytest.approx(total)
    agent = SoftmaxQ(learning_rate=a, beta=b)
    assert log_likelihood(agent, df)[0] == pytest.approx(total)
    # ε-greedy: trial 0 tied (1/2 each), trial 1 greedy arm 0 (chose 1: ε/2), trial 2 greedy
    # arm 0 again (Q = 0.4 vs 0.2): chose 0, 1 − ε/2
    eps = 0.3
    expected = np.log(0.5) + np.log(eps / 2) + np.log(1 - eps / 2)
    ll = log_likelihood(EpsilonGreedy, df, epsilon=eps, learning_rate=a)[0]
    assert ll == pytest.approx(expected)


def test_a_choice_with_probability_zero_hits_the_floor_not_minus_infinity():
    df = _frame(choice=[0, 1, 1])
    ll = log_likelihood(EpsilonGreedy, df, epsilon=0.0, learning_rate=1.0)[0]
    assert np.isfinite(ll) and ll < -600


# -- fitting ----------------------------------------------------------------------------------
def test_pooled_fit_recovers_the_generating_parameters():
    env = paradigms.make("bandit/switching", hazard=0.05)
    ds = run_bandit(SoftmaxQ(learning_rate=0.3, beta=5.0), env, 40, 150, seed=1)
    fit = fit_agent(SoftmaxQ, choices_frame(ds), per_session=False, n_restarts=2)
    assert fit.params.loc["pooled", "learning_rate"] == pytest.approx(0.3, abs=0.06)
    assert fit.params.loc["pooled", "beta"] == pytest.approx(5.0, abs=0.8)
    assert fit.converged.all()


def test_per_session_fits_track_the_true_parameters():
    df, lr, beta = _softmax_data()
    fit = fit_agent(SoftmaxQ, df, n_restarts=3, seed=0)
    assert np.corrcoef(fit.params["learning_rate"], lr)[0, 1] > 0.6
    assert np.corrcoef(fit.params["beta"], beta)[0, 1] > 0.6
    # each fit is a maximum: no better than the truth by chance alone, never worse
    truth = log_likelihood(SoftmaxQ, df, learning_rate=lr, beta=beta)
    assert (fit.loglik.to_numpy() >= truth - 1e-6).all()


def test_lockstep_fits_equal_separate_fits_and_are_seeded():
    df, _, _ = _softmax_data()
    three = df[df["session"] < 3]
    together = fit_agent(SoftmaxQ, three, n_restarts=2, seed=4)
    for s in range(3):
        # the same design and starts per session: the same optimisation, batched or not
        alone = fit_agent(SoftmaxQ, three[three["session"] == s], n_restarts=2, seed=4)
        np.testing.assert_allclose(together.params.iloc[s], alone.params.iloc[0], rtol=1e-12)
        assert together.loglik.iloc[s] == pytest.approx(alone.loglik.iloc[0], abs=1e-9)
    again = fit_agent(SoftmaxQ, three, n_restarts=2, seed=4)
    pd.testing.assert_frame_equal(together.to_frame(), again.to_frame())


def test_pooled_loglik_is_at_most_the_sum_of_per_session_logliks():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 8]
    per = fit_agent(SoftmaxQ, part, n_restarts=2)
    pooled = fit_agent(SoftmaxQ, part, per_session=False, n_restarts=2)
    assert pooled.loglik_total <= per.loglik_total + 1e-6
    assert pooled.loglik_total == pytest.approx(pooled.loglik.sum())
    assert list(pooled.params.index) == ["pooled"]


def test_aic_and_bic_formulae():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 4]
    fit = fit_agent(SoftmaxQ, part, n_restarts=1)
    n = part.groupby("session").size().to_numpy()
    np.testing.assert_allclose(fit.aic, 2 * 2 - 2 * fit.loglik.to_numpy())
    np.testing.assert_allclose(fit.bic, 2 * np.log(n) - 2 * fit.loglik.to_numpy())
    assert fit.bic_total == pytest.approx(fit.bic.sum()) and fit.k_total == 8
    pooled = fit_agent(SoftmaxQ, part, per_session=False, n_restarts=1)
    assert pooled.bic_total == pytest.approx(2 * np.log(n.sum()) - 2 * pooled.loglik_total)
    frame = fit.to_frame()
    assert {"learning_rate", "beta", "loglik", "aic", "bic", "n_trials"} <= set(frame.columns)


def test_fixed_free_bounds_and_partials():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 3]
    fit = fit_agent(SoftmaxQ, part, fixed={"learning_rate": 0.3}, n_restarts=2)
    assert fit.free == ("beta",) and (fit.params["learning_rate"] == 0.3).all()
    via_partial = fit_agent(functools.partial(SoftmaxQ, learning_rate=0.3), part, n_restarts=2)
    np.testing.assert_allclose(via_partial.params["beta"], fit.params["beta"])
    bounded = fit_agent(SoftmaxQ, part, bounds={"beta": (0.5, 1.0)}, n_restarts=2)
    assert bounded.params["beta"].between(0.5, 1.0).all()
    with pytest.raises(ValueError, match=r"bounds for beta = \(-1.0, 1.0\) are not allowed"):
        fit_agent(SoftmaxQ, part, bounds={"beta": (-1.0, 1.0)})
    with pytest.raises(ValueError, match="unknown parameter"):
        fit_agent(SoftmaxQ, part, fixed={"temperature": 1.0})
    kalman = fit_agent(KalmanSoftmax, part.assign(reward=part["reward"] * 100), n_restarts=1)
    assert kalman.free == ("beta",)


def test_an_agent_without_free_parameters_is_evaluated_not_optimised():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 3]
    fit = fit_agent(ThompsonBeta, part)
    np.testing.assert_allclose(fit.loglik, log_likelihood(ThompsonBeta, part))
    np.testing.assert_allclose(fit.aic, -2 * fit.loglik.to_numpy())


class _Exploding(SoftmaxQ):
    name = "exploding"

    def _reset(self):
        super()._reset()
        self.n_updates = 0

    def _update(self, choices, rewards):
        self.n_updates += 1
        if self.n_updates > 20 and self.p["learning_rate"].min() < 2.0:  # always, mid-replay
            raise RuntimeError("boom on purpose")
        super()._update(choices, rewards)


def test_an_error_in_the_replay_reaches_the_caller_without_hanging():
    df, _, _ = _softmax_data()
    with pytest.raises(RuntimeError, match="boom on purpose"):
        fit_agent(_Exploding, df[df["session"] < 6], n_restarts=2)


def test_compare_models_ranks_the_generating_model_first():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 10]
    table = compare_models(part, [SoftmaxQ, EpsilonGreedy, ThompsonBeta], n_restarts=2)
    assert table["model"].iloc[0] == "softmax_q" and table["best"].tolist() == [True, False, False]
    assert table["bic_weight"].sum() == pytest.approx(1.0)
    assert table["delta_bic"].iloc[0] == 0 and (table["delta_bic"].diff().iloc[1:] >= 0).all()
    assert table["n_best_sessions"].sum() == 10
    assert table.set_index("model").loc["thompson_beta", "k"] == 0
    with pytest.raises(ValueError, match="pass a dict"):
        compare_models(part, [SoftmaxQ, functools.partial(SoftmaxQ, beta=1.0)])


def test_base_agents_without_log_probabilities_work_too():
    class Fixed(BanditAgent):
        name = "fixed"
        param_names = ("p0",)
        defaults = {"p0": 0.5}
        param_domain = {"p0": (0.0, 1.0)}
        param_bounds = {"p0": (0.0, 1.0)}

        def _reset(self):
            pass

        def choice_probabilities(self):
            p0 = self.p["p0"][:, None]
            return np.concatenate([p0, 1 - p0], axis=1)

        def _update(self, choices, rewards):
            pass

    df = pd.DataFrame({"session": 0, "trial": range(10), "choice": [0] * 7 + [1] * 3,
                       "reward": 0.0})  # fmt: skip
    fit = fit_agent(Fixed, df, n_restarts=2)
    assert fit.params["p0"].iloc[0] == pytest.approx(0.7, abs=1e-4)  # the MLE of a Bernoulli


def test_log_scale_search_and_bound_flags():
    df, _, _ = _softmax_data()
    part = df[df["session"] < 4]
    linear = fit_agent(SoftmaxQ, part, bounds={"beta": (0.05, 20.0)}, n_restarts=3)
    logged = fit_agent(
        SoftmaxQ, part, bounds={"beta": (0.05, 20.0)}, log_scale=["beta"], n_restarts=3
    )
    np.testing.assert_allclose(logged.loglik, linear.loglik, atol=1e-3)  # the same maxima
    np.testing.assert_allclose(logged.params["beta"], linear.params["beta"], rtol=1e-2)
    with pytest.raises(ValueError, match="bounds > 0"):
        fit_agent(SoftmaxQ, part, log_scale=["beta"])  # default bounds start at 0
    capped = fit_agent(SoftmaxQ, part, bounds={"beta": (0.0, 0.5)}, n_restarts=2)
    flags = capped.at_bound()
    assert flags["beta"].all()  # every subject here wants β > 0.5
    assert not linear.at_bound()["beta"].any()


def test_replays_split_into_blocks_give_the_same_fit(monkeypatch):
    import neurosim.agents._fit as fit_module

    df, _, _ = _softmax_data()
    part = df[(df["session"] < 3) & (df["trial"] < 60)]
    whole = fit_agent(SoftmaxQ, part, n_restarts=2, n_grid=8)
    pooled = fit_agent(SoftmaxQ, part, n_restarts=2, n_grid=8, per_session=False)
    monkeypatch.setattr(fit_module, "_MAX_ROWS", 4)  # pooled points (3 rows) go one by one
    pd.testing.assert_frame_equal(fit_agent(SoftmaxQ, part, n_restarts=2, n_grid=8).to_frame(),
                                  whole.to_frame())  # fmt: skip
    again = fit_agent(SoftmaxQ, part, n_restarts=2, n_grid=8, per_session=False)
    pd.testing.assert_frame_equal(again.to_frame(), pooled.to_frame())
    pd.testing.assert_series_equal(again.loglik, pooled.loglik)
