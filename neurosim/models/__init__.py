"""Recurrent models that follow the neurosim model contract.

Examples
--------
>>> from neurosim.models import RateRNN, build_model
>>> net = RateRNN(3, 16, 3)
>>> build_model(net.config()).n_units
16
"""

from typing import Any

from ._activations import AdaptiveActivation as AdaptiveActivation
from ._activations import resolve_activation as resolve_activation
from ._base import RecurrentModel as RecurrentModel
from ._cae import CAEOutput as CAEOutput
from ._cae import ComplexAutoEncoder as ComplexAutoEncoder
from ._cae import contrastive_cae_loss as contrastive_cae_loss
from ._cae import contrastive_phase_loss as contrastive_phase_loss
from ._cae import object_features as object_features
from ._cae import reconstruction_loss as reconstruction_loss
from ._complex import ComplexConv2d as ComplexConv2d
from ._complex import ComplexConvTranspose2d as ComplexConvTranspose2d
from ._complex import ComplexLayer as ComplexLayer
from ._complex import ComplexLinear as ComplexLinear
from ._complex_rnn import ComplexRNN as ComplexRNN
from ._complex_rnn import phase_locking as phase_locking
from ._connectivity import ModuleSpec as ModuleSpec
from ._latent import LatentRNN as LatentRNN
from ._modular import ModularRNN as ModularRNN
from ._primitives import adapt_to_task as adapt_to_task
from ._primitives import assemble_modules as assemble_modules
from ._primitives import pretrain_primitives as pretrain_primitives
from ._primitives import primitive_name as primitive_name
from ._primitives import random_modules as random_modules
from ._rate import RateRNN as RateRNN

_MODEL_CLASSES: dict[str, type[RecurrentModel]] = {
    "RateRNN": RateRNN,
    "ModularRNN": ModularRNN,
    "ComplexRNN": ComplexRNN,
    "LatentRNN": LatentRNN,
}


def build_model(config: dict[str, Any]) -> RecurrentModel:
    """Rebuild a model from :meth:`RecurrentModel.config` output.

    Raises
    ------
    ValueError
        If ``config["class"]`` is missing or not a known model class.
    """
    cfg = dict(config)
    name = cfg.pop("class", None)
    if name not in _MODEL_CLASSES:
        raise ValueError(
            f"model config field 'class' must be one of {sorted(_MODEL_CLASSES)}, got {name!r}"
        )
    return _MODEL_CLASSES[name](**cfg)


__all__ = [
    "LatentRNN",
    "CAEOutput",
    "ComplexAutoEncoder",
    "contrastive_cae_loss",
    "contrastive_phase_loss",
    "object_features",
    "reconstruction_loss",
    "ComplexConv2d",
    "ComplexConvTranspose2d",
    "ComplexLayer",
    "ComplexLinear",
    "ComplexRNN",
    "phase_locking",
    "AdaptiveActivation",
    "ModularRNN",
    "ModuleSpec",
    "RateRNN",
    "RecurrentModel",
    "adapt_to_task",
    "assemble_modules",
    "build_model",
    "pretrain_primitives",
    "primitive_name",
    "random_modules",
    "resolve_activation",
]
