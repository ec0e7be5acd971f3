"""Import Kubric without TensorFlow.

Kubric imports TensorFlow only for `tf.io.gfile.GFile` and `tf.io.gfile.copy` (local files are all
we use). When real TensorFlow is absent we register a minimal stand-in module offering exactly
those two calls, then import kubric. Use `from eqscale.physics.kubric_compat import kb`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import types

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
    tf.__doc__ = "eqscale stand-in: only tf.io.gfile.GFile and tf.io.gfile.copy, on local files"
    tf.io = types.SimpleNamespace(gfile=gfile)
    sys.modules["tensorflow"] = tf


_install_tensorflow_stand_in()
_root_level = logging.getLogger().level
import kubric as kb  # noqa: E402

# kubric's import configures the root logger verbosely; restore the caller's level
logging.getLogger().setLevel(_root_level)

__all__ = ["kb"]
