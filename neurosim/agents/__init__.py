"""Bandit agents, vectorised over sessions, the closed-loop runner and fitting to choice data.

Examples
--------
>>> import paradigms
>>> from neurosim.agents import RandomAgent, run_bandit
>>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 8, 20, seed=1)
>>> ds["choice"].shape
(8, 20)
"""

from ._a2c import advantages as advantages
from ._a2c import discounted_returns as discounted_returns
from ._a2c import train_meta_rl as train_meta_rl
from ._base import BanditAgent as BanditAgent
from ._base import RandomAgent as RandomAgent
from ._base import choices_frame as choices_frame
from ._base import run_bandit as run_bandit
from ._baselines import UCB1 as UCB1
from ._baselines import EpsilonGreedy as EpsilonGreedy
from ._baselines import SoftmaxQ as SoftmaxQ
from ._baselines import ThompsonBeta as ThompsonBeta
from ._baselines import ThompsonGaussian as ThompsonGaussian
from ._baselines import beta_argmax_probabilities as beta_argmax_probabilities
from ._choice_data import ChoiceArrays as ChoiceArrays
from ._choice_data import choice_arrays as choice_arrays
from ._choice_data import validate_choice_data as validate_choice_data
from ._fit import FitResult as FitResult
from ._fit import compare_models as compare_models
from ._fit import fit_agent as fit_agent
from ._fit import log_likelihood as log_likelihood
from ._kalman import KalmanSoftmax as KalmanSoftmax
from ._meta_rl import MetaRLAgent as MetaRLAgent
from ._meta_rl import make_meta_rl_model as make_meta_rl_model
from ._meta_rl import meta_rl_trajectories as meta_rl_trajectories
from ._quadrature import gaussian_argmax_probabilities as gaussian_argmax_probabilities
from ._renyi import SAJID2021_PRIOR as SAJID2021_PRIOR
from ._renyi import RenyiAgent as RenyiAgent

__all__ = [
    "BanditAgent",
    "ChoiceArrays",
    "EpsilonGreedy",
    "FitResult",
    "KalmanSoftmax",
    "MetaRLAgent",
    "RandomAgent",
    "RenyiAgent",
    "SAJID2021_PRIOR",
    "SoftmaxQ",
    "ThompsonBeta",
    "ThompsonGaussian",
    "UCB1",
    "advantages",
    "beta_argmax_probabilities",
    "choice_arrays",
    "choices_frame",
    "compare_models",
    "discounted_returns",
    "fit_agent",
    "gaussian_argmax_probabilities",
    "log_likelihood",
    "make_meta_rl_model",
    "meta_rl_trajectories",
    "run_bandit",
    "train_meta_rl",
    "validate_choice_data",
]
