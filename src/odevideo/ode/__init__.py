"""ODE solving: the solver wrapper and vector fields."""

from odevideo.ode.fields import ConvField, MLPField
from odevideo.ode.solve import METHODS, ODESolution, SolverConfig, integrate, solve

__all__ = ["METHODS", "ConvField", "MLPField", "ODESolution", "SolverConfig", "integrate", "solve"]
