"""Task definitions and environments; knows nothing of models.

Examples
--------
>>> import paradigms
>>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
>>> batch = task.batch(16, rng=0)
>>> batch.inputs.shape[:1]
(16,)
"""

from . import _neurogym as _neurogym  # registers the neurogym namespace lazily
from ._base import Paradigm as Paradigm
from ._base import TrialBatch as TrialBatch
from ._base import as_generator as as_generator
from ._base import available as available
from ._base import make as make
from ._base import register as register
from ._neurogym import EXCLUDED as NEUROGYM_EXCLUDED
from ._neurogym import NeurogymParadigm as NeurogymParadigm

__all__ = [
    "NEUROGYM_EXCLUDED",
    "NeurogymParadigm",
    "Paradigm",
    "TrialBatch",
    "as_generator",
    "available",
    "make",
    "register",
]
