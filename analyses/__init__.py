"""Analyses of trajectories: xarray in, xarray out (``compute_*`` functions) and plots.

Examples
--------
>>> import numpy as np, analyses
>>> round(analyses.participation_ratio(np.eye(3)), 6)
2.0
"""

from ._autocorrelograms import compute_autocorrelograms as compute_autocorrelograms
from ._bandit_behaviour import compare_agents as compare_agents
from ._bandit_behaviour import compute_bandit_curves as compute_bandit_curves
from ._bandit_behaviour import compute_bandit_metrics as compute_bandit_metrics
from ._bandit_behaviour import summarise_bandit_metrics as summarise_bandit_metrics
from ._behaviour import compute_choices as compute_choices
from ._behaviour import compute_psychometric as compute_psychometric
from ._border import border_score as border_score
from ._dynamics import compute_pca as compute_pca
from ._dynamics import participation_ratio as participation_ratio
from ._dynamics_comparison import compute_dynamics_comparison as compute_dynamics_comparison
from ._dynamics_comparison import lyapunov_agreement as lyapunov_agreement
from ._fixed_points import classify_stability as classify_stability
from ._fixed_points import compute_fixed_points as compute_fixed_points
from ._fixed_points import sample_states as sample_states
from ._grid import compute_grid_scores as compute_grid_scores
from ._grid import gridness as gridness
from ._grid import shuffle_threshold as shuffle_threshold
from ._linearisation import compute_linearisation as compute_linearisation
from ._lyapunov import compute_lyapunov_spectrum as compute_lyapunov_spectrum
from ._lyapunov_direct import compute_max_lyapunov_direct as compute_max_lyapunov_direct
from ._objects import Synchrony as Synchrony
from ._objects import adjusted_rand_index as adjusted_rand_index
from ._objects import ari_bg as ari_bg
from ._objects import ari_fg as ari_fg
from ._objects import cluster_phases as cluster_phases
from ._objects import compute_object_discovery as compute_object_discovery
from ._objects import phase_synchrony as phase_synchrony
from ._rate_maps import compute_head_direction_tuning as compute_head_direction_tuning
from ._rate_maps import compute_rate_maps as compute_rate_maps
from ._robustness import compute_robustness as compute_robustness
from ._stats import format_mean_ci as format_mean_ci
from ._stats import markdown_table as markdown_table
from ._stats import mean_ci as mean_ci

__all__ = [
    "compute_dynamics_comparison",
    "lyapunov_agreement",
    "Synchrony",
    "adjusted_rand_index",
    "ari_bg",
    "ari_fg",
    "cluster_phases",
    "compute_object_discovery",
    "phase_synchrony",
    "compare_agents",
    "compute_bandit_curves",
    "compute_bandit_metrics",
    "summarise_bandit_metrics",
    "border_score",
    "compute_autocorrelograms",
    "compute_grid_scores",
    "compute_head_direction_tuning",
    "compute_rate_maps",
    "format_mean_ci",
    "gridness",
    "markdown_table",
    "mean_ci",
    "shuffle_threshold",
    "classify_stability",
    "compute_choices",
    "compute_fixed_points",
    "compute_linearisation",
    "compute_lyapunov_spectrum",
    "compute_max_lyapunov_direct",
    "compute_pca",
    "compute_psychometric",
    "compute_robustness",
    "participation_ratio",
    "sample_states",
]
