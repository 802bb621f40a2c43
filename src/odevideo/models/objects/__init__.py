"""The object latent ODE (``kind: objects``): a tracker that builds in Moving MNIST's rules. See
:mod:`odevideo.models.objects.model`."""

from odevideo.models.objects.model import ObjectODE, ObjectsConfig, PoseField
from odevideo.models.objects.sprites import crop, fold, place, render
from odevideo.models.objects.tracking import detect, fit_tracks

__all__ = ["ObjectODE", "ObjectsConfig", "PoseField", "crop", "detect", "fit_tracks", "fold", "place", "render"]
