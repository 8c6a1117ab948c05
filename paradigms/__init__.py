"""Task definitions and environments; knows nothing of models.

Examples
--------
>>> import paradigms
>>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
>>> batch = task.batch(16, rng=0)
>>> batch.inputs.shape[:1]
(16,)
"""

from . import _bandits as _bandits
from . import _multitask as _multitask
from . import _navigation as _navigation
from . import _neurogym as _neurogym  # registers the neurogym namespace lazily
from . import _scenes as _scenes
from ._bandit_envs import SAJID2021_ARMS as SAJID2021_ARMS
from ._bandit_envs import GaussianMixtureBandit as GaussianMixtureBandit
from ._bandit_envs import RestlessBandit as RestlessBandit
from ._bandits import BanditParadigm as BanditParadigm
from ._bandits import BernoulliBandit as BernoulliBandit
from ._bandits import GaussianBandit as GaussianBandit
from ._bandits import SwitchingBandit as SwitchingBandit
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
from ._navigation import NavigationParadigm as NavigationParadigm
from ._navigation import Trajectories as Trajectories
from ._navigation import generate_trajectories as generate_trajectories
from ._neurogym import EXCLUDED as NEUROGYM_EXCLUDED
from ._neurogym import NeurogymParadigm as NeurogymParadigm
from ._place_cells import HeadDirectionCells as HeadDirectionCells
from ._place_cells import PlaceCells as PlaceCells
from ._place_cells import decode_heading as decode_heading
from ._place_cells import decode_position as decode_position
from ._place_cells import position_error_cm as position_error_cm
from ._scenes import SceneParadigm as SceneParadigm
from ._scenes import scene_images as scene_images

_bandits._register()
_multitask._register()
_scenes._register()
_navigation._register()

__all__ = [
    "SceneParadigm",
    "scene_images",
    "BanditParadigm",
    "BernoulliBandit",
    "GaussianBandit",
    "GaussianMixtureBandit",
    "RestlessBandit",
    "SAJID2021_ARMS",
    "SwitchingBandit",
    "HeadDirectionCells",
    "NavigationParadigm",
    "PlaceCells",
    "Trajectories",
    "decode_heading",
    "decode_position",
    "generate_trajectories",
    "position_error_cm",
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
