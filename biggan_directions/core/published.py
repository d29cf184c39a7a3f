"""The Hessian Penalty's published constants (Peebles et al., ECCV 2020), torch-free.

One home for each: `penalty.hessian_penalty`'s defaults and DiscoverConfig's `k` and `epsilon`
defaults are these names. Kept out of penalty.py (which loads torch) so that the config, and
the CLI options built from it, read them without loading torch.
"""

PUBLISHED_K = 2             # Rademacher draws per sample (the variance needs at least 2)
PUBLISHED_EPSILON = 0.1     # finite-difference step (the penalty scales like 1/epsilon^4)
