"""ODE solving: the solver wrapper and vector fields."""

from odevideo.ode.fields import ConvField, GatedConvField, MLPField
from odevideo.ode.solve import METHODS, ODESolution, solve

__all__ = ["METHODS", "ConvField", "GatedConvField", "MLPField", "ODESolution", "solve"]
