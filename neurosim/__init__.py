"""neurosim: paradigms → models → trajectories, perturbations and fits."""
