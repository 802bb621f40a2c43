"""Typed errors. Each is a user-facing message: the CLI prints it on one line and exits non-zero."""


class OdevideoError(Exception):
    """Base class of every error odevideo raises for bad input or a failed run."""


class ConfigError(OdevideoError, ValueError):
    """Unknown config file, section or key, or an invalid value."""


class DataError(OdevideoError, ValueError):
    """Missing, corrupt or ill-shaped input data."""


class CheckpointError(OdevideoError, ValueError):
    """Missing, corrupt or incompatible checkpoint."""


class SolverError(OdevideoError, RuntimeError):
    """The ODE solve failed: function-evaluation budget exceeded, non-finite state, step underflow."""


class WeightsError(OdevideoError, RuntimeError):
    """Missing, damaged or unsafe weights of a perceptual metric (LPIPS, FVD's I3D)."""
