"""Guaranteed error bounds: the Poisson-Gaussian noise model, exact integer bin tables, and what a file promises."""
