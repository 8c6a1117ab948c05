"""Spiking networks on Brian2: paradigm-driven simulation, spikes back as trajectories.

Examples
--------
>>> from neurosim.spiking import lif_rate
>>> float(lif_rate(30.0).round(1))
63.0
"""

from ._backend import TARGETS as TARGETS
from ._backend import BuiltNetwork as BuiltNetwork
from ._backend import SpikingNetwork as SpikingNetwork
from ._backend import run_spiking as run_spiking
from ._lif import LIFPopulation as LIFPopulation
from ._lif import lif_rate as lif_rate
from ._poisson import PoissonPopulation as PoissonPopulation
from ._sources import poisson_trains as poisson_trains

__all__ = [
    "TARGETS",
    "BuiltNetwork",
    "LIFPopulation",
    "PoissonPopulation",
    "SpikingNetwork",
    "lif_rate",
    "poisson_trains",
    "run_spiking",
]
