"""The Rényi-bound agent: limits, estimators against closed forms, the α sweep, behaviour."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special

from neurosim.agents._base import run_bandit
from neurosim.agents._renyi import RenyiAgent, parse_prior
from neurosim.agents._renyi_bound import (
    LOG_2PI,
    bound_gradient,
    conjugate_posterior,
    gauss_hermite_nodes,
    gaussian_log_evidence,
    gaussian_renyi_bound,
    gaussian_renyi_divergence,
    geometric_interpolation,
    likelihood_terms,
    maximise_bound,
)

GAUSS_PRIOR = {"means": [[0.0], [1.0]], "sds": 2.0}  # one Gaussian per arm (2 arms)
BIMODAL = {"means": [13.0, 20.0], "sds": 1.5}  # Sajid et al.'s arm-1 prior, on every arm
# the bimodal target: that prior and one reward at the midpoint, obs_sd 3 (posterior modes
# at 13.7 and 19.3, each with SD 1.342; posterior mean 16.5, SD 3.105)
Y_MID, OBS_SD_MID = 16.5, 3.0
COMPONENT_SD = 1 / math.sqrt(1 / 1.5**2 + 1 / OBS_SD_MID**2)


def _brute_posterior(rewards, prior_mean, prior_sd, obs_sd):
    """Conjugate posterior from the raw rewards, with no sufficient statistics."""
    prec = 1 / prior_sd**2 + len(rewards) / obs_sd**2
    return (prior_mean / prior_sd**2 + np.sum(rewards) / obs_sd**2) / prec, 1 / math.sqrt(prec)


def _feed(agent, rng, n_trials, n_sessions):
    """Random choices and rewards; returns them per session."""
    log = []
    for _ in range(n_trials):
        c = rng.integers(0, agent.n_arms, n_sessions)
        r = rng.normal(2.0, 1.5, n_sessions)
        agent.update(c, r)
        log.append((c, r))
    return log


# -- the closed form and the α → 1 limit ----------------------------------------------------
@pytest.mark.parametrize("window", [None, 3])
def test_closed_form_is_the_conjugate_posterior_for_every_alpha(window):
    S = 4
    alpha = np.array([1e-6, 0.5, 1 - 1e-6, 1.0])  # one α per session: all give the posterior
    agent = RenyiAgent(alpha, prior=GAUSS_PRIOR, obs_sd=1.5, window=window)
    assert agent.method == "closed_form"
    agent.reset(S, 2, rng=0)
    log = _feed(agent, np.random.default_rng(1), 12, S)
    st = agent.state()
    for s in range(S):
        for a in range(2):
            ys = [r[s] for c, r in log if c[s] == a]
            ys = ys if window is None else ys[-window:]
            mean, sd = _brute_posterior(ys, float(a), 2.0, 1.5)
            assert st["posterior_mean"][s, a] == pytest.approx(mean, abs=1e-10)
            assert st["posterior_sd"][s, a] == pytest.approx(sd, rel=1e-10)


@pytest.mark.parametrize("alpha", [1.0, 1 - 1e-6, 0.5])
def test_optimised_bound_reaches_the_exact_posterior(alpha):
    """Adam on the deterministic (Gauss–Hermite) bound lands on the conjugate update."""
    agent = RenyiAgent(alpha, prior=GAUSS_PRIOR, obs_sd=1.5, estimator="quadrature",
                       n_samples=32, n_steps=1000)  # fmt: skip
    agent.reset(3, 2, rng=0)
    log = _feed(agent, np.random.default_rng(2), 2, 3)
    exact = RenyiAgent(alpha, prior=GAUSS_PRIOR, obs_sd=1.5)
    exact.reset(3, 2, rng=0)
    for c, r in log:
        exact.update(c, r)
    touched = np.zeros((3, 2), bool)
    for c, _ in log:
        touched[np.arange(3), c] = True
    for key in ("posterior_mean", "posterior_sd"):
        np.testing.assert_allclose(agent.state()[key][touched], exact.state()[key][touched],
                                   rtol=1e-8, atol=1e-8)  # fmt: skip


def test_alpha_one_is_the_elbo_limit():
    nodes, log_nu = gauss_hermite_nodes(16)
    prior = (np.array([[-0.5 * (LOG_2PI + math.log(4.0))]]), np.zeros((1, 1)), np.full((1, 1), 4.0))
    lam, ybar, c = likelihood_terms(np.array([3.0]), np.array([4.5]), np.array([9.0]),
                                    np.array([1.5]))  # fmt: skip
    mu, lv = np.array([0.7]), np.array([math.log(0.3)])
    vals = {a: bound_gradient(nodes, mu, lv, prior, lam, ybar, np.array([a]), log_nu, c)
            for a in (1.0, 1 - 1e-6, 1 + 1e-6)}  # fmt: skip
    # the ELBO is exact under Gauss–Hermite (its integrand is quadratic in θ)
    elbo = gaussian_log_evidence(0.0, 4.0, lam, ybar, c) - gaussian_renyi_divergence(
        mu, 0.3, *conjugate_posterior(0.0, 4.0, lam, ybar), 1.0
    )
    assert vals[1.0][2][0] == pytest.approx(elbo[0], abs=1e-10)
    for a in (1 - 1e-6, 1 + 1e-6):
        assert vals[a][2][0] == pytest.approx(vals[1.0][2][0], abs=1e-5)
        for i in (0, 1):
            assert vals[a][i][0] == pytest.approx(vals[1.0][i][0], rel=1e-4)
    kl = gaussian_renyi_divergence(0.3, 0.5, 1.0, 2.0, 1.0)
    assert gaussian_renyi_divergence(0.3, 0.5, 1.0, 2.0, 1 - 1e-7) == pytest.approx(kl, rel=1e-5)


# -- closed forms against numerical integration and Monte Carlo -------------------------------
def test_renyi_divergence_and_interpolation_against_integration():
    m1, v1, m2, v2 = 0.3, 0.8, 1.0, 1.7
    for a in (0.2, 0.7, 2.0, 3.0):
        f = lambda t, a=a: math.exp(  # noqa: E731
            a * (-0.5 * (t - m1) ** 2 / v1 - 0.5 * math.log(2 * math.pi * v1))
            + (1 - a) * (-0.5 * (t - m2) ** 2 / v2 - 0.5 * math.log(2 * math.pi * v2))
        )
        integral = integrate.quad(f, -30, 30)[0]
        assert gaussian_renyi_divergence(m1, v1, m2, v2, a) == pytest.approx(
            math.log(integral) / (a - 1), rel=1e-7
        )
        mean, var = geometric_interpolation(m1, v1, m2, v2, a)  # r_α ∝ q^α p^(1−α)
        moment = integrate.quad(lambda t, f=f: t * f(t), -30, 30)[0] / integral
        assert mean == pytest.approx(moment, rel=1e-7)
    assert math.isinf(gaussian_renyi_divergence(0.0, 3.0, 0.0, 1.0, 2.0))  # q too wide, α > 1
    # as an update, the interpolation steps toward the posterior: its fixed point
    q = (5.0, 9.0)
    for _ in range(60):
        q = geometric_interpolation(*q, m2, v2, 0.7)
    assert q == pytest.approx((m2, v2), rel=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_monte_carlo_bound_matches_the_analytic_bound(alpha):
    prior = (np.array([[-0.5 * (LOG_2PI + math.log(4.0))]]), np.zeros((1, 1)), np.full((1, 1), 4.0))
    lam, ybar, c = likelihood_terms(np.array([5.0]), np.array([6.0]), np.array([10.0]),
                                    np.array([1.5]))  # fmt: skip
    pm, pv = conjugate_posterior(0.0, 4.0, lam, ybar)
    mu, var = pm[0] + 0.2, 0.8 * pv[0]  # near the posterior, narrower: finite-variance weights
    eps = np.random.default_rng(3).standard_normal((1, 200_000))
    a = np.array([alpha])
    gm, gv, value = bound_gradient(eps, np.array([mu]), np.array([math.log(var)]), prior,
                                   lam, ybar, a, None, c)  # fmt: skip
    exact = gaussian_renyi_bound(mu, var, 0.0, 4.0, lam, ybar, c, alpha)
    assert value[0] == pytest.approx(exact[0], abs=3e-3)
    h = 1e-5  # gradients against finite differences of the analytic bound
    fd_mu = (gaussian_renyi_bound(mu + h, var, 0.0, 4.0, lam, ybar, c, alpha)
             - gaussian_renyi_bound(mu - h, var, 0.0, 4.0, lam, ybar, c, alpha)) / (2 * h)  # fmt: skip
    lv = math.log(var)
    fd_lv = (gaussian_renyi_bound(mu, math.exp(lv + h), 0.0, 4.0, lam, ybar, c, alpha)
             - gaussian_renyi_bound(mu, math.exp(lv - h), 0.0, 4.0, lam, ybar, c, alpha)) / (2 * h)  # fmt: skip
    assert gm[0] == pytest.approx(fd_mu[0], abs=0.03)
    assert gv[0] == pytest.approx(fd_lv[0], abs=0.03)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_monte_carlo_optimum_matches_the_closed_form(alpha):
    S = 16
    kw = {"prior": GAUSS_PRIOR, "obs_sd": 1.5}
    mc = RenyiAgent(alpha, estimator="mc", n_steps=1000, **kw)
    exact = RenyiAgent(alpha, **kw)
    rewards = np.random.default_rng(4).normal(2.0, 1.5, (2, S))
    for agent in (mc, exact):
        agent.reset(S, 2, rng=5)
        for r in rewards:
            agent.update(np.zeros(S, np.int64), r)
    err = mc.state()["posterior_mean"][:, 0] - exact.state()["posterior_mean"][:, 0]
    ratio = mc.state()["posterior_sd"][:, 0] / exact.state()["posterior_sd"][:, 0]
    assert abs(err.mean()) < 0.03 and np.abs(err).max() < 0.2  # Adam + MC jitter about 0
    assert abs(ratio.mean() - 1) < 0.03 and np.abs(ratio - 1).max() < 0.12


def test_adam_is_torch_adam_on_the_same_bound():
    nodes, log_nu = gauss_hermite_nodes(24)
    S, steps, alpha = 3, 40, np.array([0.3, 1.0, 2.5])
    w, m, sd = parse_prior(BIMODAL)
    pv = np.tile(sd**2, (S, 1))
    prior = (np.tile(np.log(w) - 0.5 * (LOG_2PI + np.log(sd**2)), (S, 1)), np.tile(m, (S, 1)), pv)
    lam, ybar = np.full(S, 0.5), np.full(S, 15.0)
    mu, lv = np.array([15.0, 16.0, 17.0]), np.log(np.array([4.0, 2.0, 1.0]))
    ref = []
    for s in range(S):  # torch autograd + torch.optim.Adam, one session at a time
        p = torch.tensor([mu[s], lv[s]], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=0.05)
        eps, lnu = torch.tensor(nodes), torch.tensor(log_nu)
        for _ in range(steps):
            opt.zero_grad()
            theta = p[0] + torch.exp(0.5 * p[1]) * eps
            lprior = torch.logsumexp(torch.tensor(prior[0][s]) - 0.5 * (theta[:, None] - torch.tensor(m)) ** 2 / torch.tensor(pv[s]), 1)  # fmt: skip
            f = lprior - 0.5 * lam[s] * (theta - ybar[s]) ** 2 + 0.5 * p[1] + 0.5 * eps**2
            loss = -torch.logsumexp((1 - alpha[s]) * f + lnu, 0) / (1 - alpha[s]) if alpha[s] != 1 else -(torch.exp(lnu) * f).sum()  # fmt: skip
            loss.backward()
            opt.step()
        ref.append(p.detach().numpy())
    adam = (np.zeros((S, 2)), np.zeros((S, 2)), np.zeros(S, np.int64))
    maximise_bound(mu, lv, adam, prior, lam, ybar, alpha, n_steps=steps, lr=0.05,
                   nodes=(nodes, log_nu))  # fmt: skip
    np.testing.assert_allclose(np.column_stack([mu, lv]), np.array(ref), rtol=1e-9, atol=1e-9)


# -- the bimodal target: mass-covering for small α, mode-seeking for large α -----------------
def _grid_bound(mu, sd, alpha, grid):
    """Reference L_α(q) by the trapezoid rule on a fixed θ grid (independent of our code)."""
    comp = -0.5 * (grid[:, None] - np.array([13.0, 20.0])) ** 2 / 1.5**2
    lp = special.logsumexp(comp + math.log(0.5) - 0.5 * math.log(2 * math.pi * 1.5**2), axis=1)
    lp += -0.5 * (grid - Y_MID) ** 2 / OBS_SD_MID**2 - 0.5 * math.log(2 * math.pi * OBS_SD_MID**2)
    lq = -0.5 * ((grid - mu) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)
    dx = grid[1] - grid[0]
    if alpha == 1:
        return float((np.exp(lq) * (lp - lq)).sum() * dx)
    return float((special.logsumexp(alpha * lq + (1 - alpha) * lp) + math.log(dx)) / (1 - alpha))


def test_bimodal_objective_widths_shrink_along_the_alpha_sweep():
    grid = np.linspace(0.0, 33.0, 3301)
    alphas = [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 50.0]
    fits = []
    for a in alphas:
        runs = [optimize.minimize(lambda x, a=a: -_grid_bound(x[0], math.exp(x[1]), a, grid),
                                  [m0, math.log(2.0)], method="Nelder-Mead",
                                  options={"xatol": 1e-6, "fatol": 1e-12})
                for m0 in (12.0, 16.5)]  # fmt: skip
        best = min(runs, key=lambda r: r.fun)
        fits.append((best.x[0], math.exp(best.x[1])))
    widths = [sd for _, sd in fits]
    assert all(b <= a + 1e-4 for a, b in zip(widths, widths[1:], strict=False)), widths
    assert fits[0][0] == pytest.approx(Y_MID, abs=1e-3)  # α → 0⁺: moment matching
    assert fits[0][1] == pytest.approx(3.105, abs=0.01)
    mode = min(abs(fits[-1][0] - 13.7), abs(fits[-1][0] - 19.3))
    assert mode < 0.1 and fits[-1][1] == pytest.approx(COMPONENT_SD, rel=0.02)
    # our estimator's value agrees with the grid reference on this target
    w, m, sd = parse_prior(BIMODAL)
    prior = (np.log(w) - 0.5 * (LOG_2PI + np.log(sd**2)), m, sd**2)
    lam, ybar, c = likelihood_terms(np.ones(1), np.array([Y_MID]), np.array([Y_MID**2]),
                                    np.array([OBS_SD_MID]))  # fmt: skip
    nodes, log_nu = gauss_hermite_nodes(200)
    for a, (mu, s) in zip(alphas[1:5], fits[1:5], strict=True):
        value = bound_gradient(nodes, np.array([mu]), np.array([2 * math.log(s)]), prior,
                               lam, ybar, np.array([a]), log_nu, c)[2]  # fmt: skip
        assert value[0] == pytest.approx(_grid_bound(mu, s, a, grid), abs=1e-5)


def test_monte_carlo_agent_covers_mass_for_small_alpha_and_seeks_a_mode_for_large():
    alphas = np.repeat([0.1, 1.0, 10.0, 50.0], 8)
    agent = RenyiAgent(alphas, prior=BIMODAL, obs_sd=OBS_SD_MID, n_steps=1000, init=(15.0, 3.0))
    agent.reset(len(alphas), 2, rng=0)
    agent.update(np.zeros(len(alphas), np.int64), np.full(len(alphas), Y_MID))
    mean = agent.state()["posterior_mean"][:, 0].reshape(4, 8)
    sd = agent.state()["posterior_sd"][:, 0].reshape(4, 8)
    assert np.abs(mean[0].mean() - Y_MID) < 0.3 and sd[0].mean() > 2.9  # between modes, wide
    assert np.abs(mean[2:] - 13.7).max() < 0.15  # on the nearer mode
    assert sd[3].mean() == pytest.approx(COMPONENT_SD, rel=0.03)  # about a component's width
    widths = sd.mean(1)
    assert all(b <= a + 0.02 for a, b in zip(widths, widths[1:], strict=False)), widths


# -- behaviour ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("choice", "var"), [("ratio", [4.0, 3.75, 4.2]), ("thompson", [4.0, 1.5, 6.0])]
)
def test_choice_probabilities_match_act_frequencies(choice, var):
    S = 20_000
    agents = [RenyiAgent(1.0, choice=choice, prior="sajid2021") for _ in range(2)]
    for agent, n in zip(agents, (1, S), strict=True):
        agent.reset(n, 3, rng=7)
        agent._mu[:] = [16.0, 15.0, 16.5]
        agent._lv[:] = np.log(var)
    p = agents[0].choice_probabilities()
    freq = np.bincount(agents[1].act(), minlength=3) / S
    assert np.abs(freq - p[0]).max() < 4 * math.sqrt(0.25 / S)
    # the rule from its definition: θ̃ ~ N(μ, σ²) per arm, argmax of θ̃/σ² (ratio) or θ̃
    theta = np.random.default_rng(8).normal([16.0, 15.0, 16.5], np.sqrt(var), (S, 3))
    rule = (theta / np.array(var) if choice == "ratio" else theta).argmax(1)
    assert np.abs(np.bincount(rule, minlength=3) / S - p[0]).max() < 4 * math.sqrt(0.25 / S)
    assert len(set(np.round(p[0], 2))) == 3  # a non-trivial split (the test can fail)


def test_seeded_runs_repeat_exactly():
    import paradigms

    runs = [run_bandit(RenyiAgent(2.0, n_samples=50), paradigms.make("bandit/sajid2021"),
                       6, 15, seed=s) for s in (3, 3, 4)]  # fmt: skip
    for key in ("choice", "posterior_mean", "posterior_sd", "p_choice"):
        np.testing.assert_array_equal(runs[0][key].values, runs[1][key].values)
    assert not np.array_equal(runs[0]["posterior_mean"].values, runs[2]["posterior_mean"].values)
    assert np.allclose(runs[0]["p_choice"].sum("arm"), 1.0)


def test_likelihood_terms_from_sufficient_statistics():
    y, s = np.array([1.0, 2.5, 4.0]), 1.3
    stats = (np.array([3.0]), np.array([y.sum()]), np.array([(y**2).sum()]), np.array([s]))
    for kind, agg in (("sum", np.sum), ("mean", np.mean)):
        lam, ybar, c = likelihood_terms(*stats, kind)
        for theta in (-1.0, 2.0, 5.0):
            direct = agg(-0.5 * (y - theta) ** 2 / s**2 - 0.5 * math.log(2 * math.pi * s**2))
            assert c[0] - 0.5 * lam[0] * (theta - ybar[0]) ** 2 == pytest.approx(direct)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"prior": "uniform"}, "prior"),
        ({"prior": {"means": [1.0]}}, "prior"),
        ({"prior": {"means": [1.0, 2.0], "sds": -1.0}}, "sds"),
        ({"prior": {"means": [1.0, 2.0], "sds": 1.0, "weights": [0.2, 0.2]}}, "weights"),
        ({"prior": {"means": [1.0], "sds": 1.0, "shape": 2}}, "unknown key"),
        ({"obs_sd": 0.0}, "obs_sd"),
        ({"likelihood": "max"}, "likelihood"),
        ({"estimator": "exact"}, "estimator"),
        ({"estimator": "closed_form"}, "one-Gaussian"),
        ({"n_samples": 1}, "n_samples"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"lr": -0.1}, "lr"),
        ({"window": 0}, "window"),
        ({"choice": "greedy"}, "choice"),
        ({"init": (0.0, -1.0)}, "init"),
        ({"beta": 1.0}, "unexpected keyword|unknown parameter"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RenyiAgent(**kwargs)


def test_reset_checks_the_arms_against_the_prior():
    with pytest.raises(ValueError, match="n_arms = 2"):
        RenyiAgent().reset(3, 2, rng=0)  # the sajid2021 prior has 3 arms
    with pytest.raises(ValueError, match="obs_sd"):
        RenyiAgent(prior=BIMODAL, obs_sd=[1.0, 2.0, 3.0]).reset(3, 2, rng=0)
    agent = RenyiAgent(prior=BIMODAL)
    agent.reset(2, 4, rng=0)  # a shared prior fits any number of arms
    np.testing.assert_allclose(agent.state()["posterior_mean"], 16.5)
    with pytest.raises(ValueError, match="choices"):
        agent.update(np.array([0, 4]), np.array([1.0, 2.0]))
