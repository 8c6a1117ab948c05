"""neurosim: paradigms → models → trajectories, perturbations and fits.

Examples
--------
>>> import paradigms, neurosim
>>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
>>> net = neurosim.models.RateRNN(task.n_inputs, 32, task.n_outputs, dt=task.dt, tau=200.0)
>>> ds = neurosim.simulate(net, task, n_trials=8, seed=0)
>>> ds["state"].dims
('trial', 'time', 'unit')
"""

from importlib.metadata import PackageNotFoundError, version

from . import agents as agents
from . import fit as fit
from . import models as models
from . import spiking as spiking
from . import sweeps as sweeps
from ._checkpoint import load_checkpoint as load_checkpoint
from ._config import ConfigError as ConfigError
from ._config import ModelConfig as ModelConfig
from ._config import RunConfig as RunConfig
from ._config import SimulateConfig as SimulateConfig
from ._config import TrainConfig as TrainConfig
from ._config import load_run_config as load_run_config
from ._device import resolve_device as resolve_device
from ._nwb import export_nwb as export_nwb
from ._object_training import ObjectTrainConfig as ObjectTrainConfig
from ._object_training import ObjectTrainResult as ObjectTrainResult
from ._object_training import train_object_model as train_object_model
from ._perturbation import Perturbation as Perturbation
from ._perturbed_run import simulate_conditions as simulate_conditions
from ._recording_sources import load_recording as load_recording
from ._recordings import RecordingError as RecordingError
from ._recordings import make_recording as make_recording
from ._recordings import validate_recording as validate_recording
from ._simulate import batch_from_trajectories as batch_from_trajectories
from ._simulate import simulate as simulate
from ._sweep import CellFailure as CellFailure
from ._sweep import SweepError as SweepError
from ._sweep import load_sweep as load_sweep
from ._sweep import sweep as sweep
from ._sweep_store import SweepStoreError as SweepStoreError
from ._train import TrainingDivergedError as TrainingDivergedError
from ._train import TrainResult as TrainResult
from ._train import evaluate as evaluate
from ._train import masked_loss as masked_loss
from ._train import train as train
from ._trajectories import TrajectoryFormatError as TrajectoryFormatError
from ._trajectories import build_trajectories as build_trajectories
from ._trajectories import load as load
from ._trajectories import save as save
from ._trajectories import validate_trajectories as validate_trajectories

try:
    __version__ = version("neurosim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "RecordingError",
    "export_nwb",
    "fit",
    "load_recording",
    "make_recording",
    "validate_recording",
    "CellFailure",
    "ConfigError",
    "ModelConfig",
    "ObjectTrainConfig",
    "ObjectTrainResult",
    "Perturbation",
    "train_object_model",
    "RunConfig",
    "SweepError",
    "SweepStoreError",
    "SimulateConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "TrajectoryFormatError",
    "batch_from_trajectories",
    "build_trajectories",
    "load",
    "load_sweep",
    "save",
    "simulate",
    "simulate_conditions",
    "sweep",
    "sweeps",
    "validate_trajectories",
    "__version__",
    "evaluate",
    "load_checkpoint",
    "load_run_config",
    "masked_loss",
    "agents",
    "models",
    "spiking",
    "resolve_device",
    "train",
]
