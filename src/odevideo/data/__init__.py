"""Data: the dataset kinds and their registry, the streams that feed training, and reading users' clips.

Every dataset kind has its own module with its own config dataclass (a :class:`~odevideo.data.clips.ClipsConfig`)
and one line in ``DATASETS``; ``config.open(split)`` gives the source of a split, which every model trains on
alike (:mod:`odevideo.data.clips`).
"""

from __future__ import annotations

from odevideo.data.bouncing_balls import BouncingBallsConfig
from odevideo.data.clips import ClipsConfig
from odevideo.data.folder import FolderConfig
from odevideo.data.moving_mnist import MovingMNISTConfig

DATASETS: dict[str, type[ClipsConfig]] = {
    "moving_mnist": MovingMNISTConfig,
    "bouncing_balls": BouncingBallsConfig,
    "folder": FolderConfig,
}
DataConfig = MovingMNISTConfig | BouncingBallsConfig | FolderConfig

__all__ = ["DATASETS", "BouncingBallsConfig", "ClipsConfig", "DataConfig", "FolderConfig", "MovingMNISTConfig"]
