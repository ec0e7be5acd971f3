"""eqscale: does equivariance matter at scale? A reproducible scaling study."""

__version__ = "0.1.0"
