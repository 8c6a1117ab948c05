"""Fit models to recorded neural data: data-constrained RNNs, latent RNNs, goodness of fit.

Examples
--------
>>> import paradigms, neurosim
>>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
>>> teacher = neurosim.models.RateRNN(task.n_inputs, 8, task.n_outputs, dt=task.dt,
...                                   tau=200.0, activation="tanh")
>>> rec = neurosim.fit.teacher_recording(teacher, task, n_trials=30, seed=0, kind="counts")
>>> res = neurosim.fit.fit(rec, "latent", n_latent=4, max_epochs=2, quiet=True)
>>> type(res.model).__name__, "co_bps" in res.metrics
('LatentRNN', True)
"""

from ._constrained import ConstrainedFit as ConstrainedFit
from ._constrained import fit_constrained as fit_constrained
from ._fit import FitResult as FitResult
from ._fit import fit as fit
from ._fit import fit_options as fit_options
from ._fit import save_fit as save_fit
from ._latent_fit import LatentFit as LatentFit
from ._latent_fit import LatentSplit as LatentSplit
from ._latent_fit import fit_latent as fit_latent
from ._metrics import bits_per_spike as bits_per_spike
from ._metrics import decoding_r2 as decoding_r2
from ._metrics import poisson_nll as poisson_nll
from ._metrics import psth_r2 as psth_r2
from ._metrics import pvar as pvar
from ._metrics import r2_per_unit as r2_per_unit
from ._metrics import smoothed_psth_baseline as smoothed_psth_baseline
from ._synthetic import shuffled_recording as shuffled_recording
from ._synthetic import teacher_recording as teacher_recording
from ._synthetic import trial_table as trial_table

__all__ = [
    "ConstrainedFit",
    "FitResult",
    "LatentFit",
    "LatentSplit",
    "bits_per_spike",
    "decoding_r2",
    "fit",
    "fit_constrained",
    "fit_latent",
    "fit_options",
    "poisson_nll",
    "psth_r2",
    "pvar",
    "r2_per_unit",
    "save_fit",
    "shuffled_recording",
    "smoothed_psth_baseline",
    "teacher_recording",
    "trial_table",
]
