"""Analyses of trajectories: xarray in, xarray out (``compute_*`` functions) and plots.

Examples
--------
>>> import numpy as np, analyses
>>> round(analyses.participation_ratio(np.eye(3)), 6)
2.0
"""

from ._behaviour import compute_choices as compute_choices
from ._behaviour import compute_psychometric as compute_psychometric
from ._dynamics import compute_pca as compute_pca
from ._dynamics import participation_ratio as participation_ratio
from ._robustness import compute_robustness as compute_robustness

__all__ = [
    "compute_choices",
    "compute_pca",
    "compute_psychometric",
    "compute_robustness",
    "participation_ratio",
]
