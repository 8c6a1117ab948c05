"""Task definitions and environments; knows nothing of models.

Examples
--------
>>> import paradigms
>>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
>>> batch = task.batch(16, rng=0)
>>> batch.inputs.shape[:1]
(16,)
"""

from . import _multitask as _multitask
from . import _neurogym as _neurogym  # registers the neurogym namespace lazily
from ._base import Paradigm as Paradigm
from ._base import TrialBatch as TrialBatch
from ._base import as_generator as as_generator
from ._base import available as available
from ._base import make as make
from ._base import register as register
from ._multitask import YANG19_CORPUS as YANG19_CORPUS
from ._multitask import YANG19_PRIMITIVES as YANG19_PRIMITIVES
from ._multitask import MultiTaskParadigm as MultiTaskParadigm
from ._multitask import subset_batch as subset_batch
from ._neurogym import EXCLUDED as NEUROGYM_EXCLUDED
from ._neurogym import NeurogymParadigm as NeurogymParadigm

_multitask._register()

__all__ = [
    "MultiTaskParadigm",
    "NEUROGYM_EXCLUDED",
    "NeurogymParadigm",
    "Paradigm",
    "TrialBatch",
    "YANG19_CORPUS",
    "YANG19_PRIMITIVES",
    "as_generator",
    "available",
    "make",
    "register",
    "subset_batch",
]
