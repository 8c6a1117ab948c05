"""Bandit agents, vectorised over sessions, the closed-loop runner and fitting to choice data.

Examples
--------
>>> import paradigms
>>> from neurosim.agents import RandomAgent, run_bandit
>>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 8, 20, seed=1)
>>> ds["choice"].shape
(8, 20)
"""

from ._base import BanditAgent as BanditAgent
from ._base import RandomAgent as RandomAgent
from ._base import choices_frame as choices_frame
from ._base import run_bandit as run_bandit

__all__ = ["BanditAgent", "RandomAgent", "choices_frame", "run_bandit"]
