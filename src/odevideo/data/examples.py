"""Example clips that need no file and no download, by name: ``--input digits2`` wherever a clip is read, and
the web page's examples. Each is test sequence 0 of its dataset, 20 frames, rendered here."""

from __future__ import annotations

import numpy as np

from odevideo.errors import DataError

EXAMPLES = {"digits1": "1-digit Moving MNIST, test sequence 0 (built-in digits), 20 frames",
           "digits2": "2-digit Moving MNIST, test sequence 0 (built-in digits), 20 frames",
           "balls": "3 bouncing balls, grey 32x32, test sequence 0, 20 frames",
           "balls_colour": "3 bouncing balls, colour 64x64, test sequence 0, 20 frames"}


def example_clip(name: str) -> np.ndarray:
    """The example clip ``name`` (see ``EXAMPLES``) as uint8 frames (20, C, H, W), one frame per time unit."""
    if name not in EXAMPLES:
        raise DataError(f"no example clip {name!r}; the examples are {', '.join(EXAMPLES)}")
    if name.startswith("digits"):
        from odevideo.data.moving_mnist import MovingMNIST

        return MovingMNIST("test", digits=int(name[-1])).render_uint8([0])[0][:, None]
    from odevideo.data.bouncing_balls import BouncingBallsConfig

    colour = name == "balls_colour"
    source = BouncingBallsConfig(colour=colour, size=64 if colour else 32, n_frames=20).open("test")
    return source.batch(np.arange(1), as_float=False)["frames"][0].numpy()
