"""Import Kubric without TensorFlow.

Kubric imports TensorFlow only for `tf.io.gfile.GFile` and `tf.io.gfile.copy` (local files are all
we use). When real TensorFlow is absent we register a minimal stand-in module offering exactly
those two calls, then import kubric. Use `from eqscale.physics.kubric_compat import kb`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import logging
import os
import shutil
import sys
import types

import numpy as np

os.environ.setdefault("EPATH_USE_TF", "false")


def _install_tensorflow_stand_in() -> None:
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return

    def gfile_copy(src, dst, overwrite: bool = False) -> None:
        if os.path.exists(dst) and not overwrite:
            raise FileExistsError(f"{dst} exists and overwrite=False")
        shutil.copyfile(os.fspath(src), os.fspath(dst))

    def gfile_open(name, mode: str = "r"):
        return open(os.fspath(name), mode)

    gfile = types.SimpleNamespace(GFile=gfile_open, copy=gfile_copy)
    tf = types.ModuleType("tensorflow")
    # a spec without an origin: importlib.util.find_spec (torch._dynamo probes for tensorflow) must
    # not fail on it, and such probes see no real TensorFlow installation
    tf.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
    tf.__doc__ = "eqscale stand-in: only tf.io.gfile.GFile and tf.io.gfile.copy, on local files"
    tf.io = types.SimpleNamespace(gfile=gfile)
    sys.modules["tensorflow"] = tf


_install_tensorflow_stand_in()
_root_level = logging.getLogger().level
import kubric as kb  # noqa: E402

# kubric's import configures the root logger verbosely; restore the caller's level
logging.getLogger().setLevel(_root_level)


def _bbox_3d(self) -> "np.ndarray":
    """Kubric's PhysicalObject.bbox_3d (8 rotated, shifted corners) with one matrix product.

    Kubric rotates each corner through pyquaternion objects; spawning samples this for every
    placement attempt, where it was a tenth of the cost of a whole trajectory.
    """
    bounds = np.array(self.bounds, dtype=np.float32) * self.scale
    corners = np.array(list(itertools.product(bounds[:, 0], bounds[:, 1], bounds[:, 2])), dtype=np.float64)
    w, x, y, z = (float(c) for c in self.quaternion)
    norm = w * w + x * x + y * y + z * z
    w, x, y, z = (c / np.sqrt(norm) for c in (w, x, y, z))  # pyquaternion rotates by the unit quaternion
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
    return corners @ rotation.T + np.asarray(self.position)


kb.core.objects.PhysicalObject.bbox_3d = property(_bbox_3d)

__all__ = ["kb"]
