"""Kubric's PyBullet view on one PyBullet client that outlives each scene.

Kubric's `PyBullet` view connects a new DIRECT client per scene. Connecting costs 4-13 ms here
(it varies with the process's allocator state, which made single benchmark rounds swing by tens
of percent), against ~26 ms of stepping for a whole default trajectory (2 s, 6.5 objects); a reset
costs ~1.5 ms. `SharedClient` connects once per shard; `ReusedClientView` resets that client's
world and re-applies Kubric's engine settings for every scene, then behaves exactly like Kubric's
view (same body loading, same trait observers, same overlap checks). A test checks that a scene
simulated this way is bit-identical to the same scene on Kubric's own view with a fresh client.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet as pb

from eqscale.physics.kubric_compat import kb  # noqa: F401  (imports kubric without TensorFlow first)
from kubric import core  # noqa: E402
from kubric.simulator.pybullet import PyBullet, _BulletClient  # noqa: E402

# Kubric's PyBullet view sets exactly these in its constructor (against PyBullet's "sticky walls",
# bullet3 issue 3094); resetSimulation restores PyBullet's defaults, so they are set again per scene
KUBRIC_ENGINE_PARAMETERS = dict(restitutionVelocityThreshold=0.0, warmStartingFactor=0.0, useSplitImpulse=True,
                                contactSlop=0.0, enableConeFriction=False, deterministicOverlappingPairs=True)


class InertiaFromFileClient(_BulletClient):
    """Kubric's client, loading URDFs with the inertia they state (PyBullet's default is its box estimate)."""

    def loadURDF(self, *args, **kwargs):  # noqa: N802 - PyBullet's name
        """pybullet.loadURDF on this client, with URDF_USE_INERTIA_FROM_FILE added to the flags."""
        kwargs["flags"] = kwargs.get("flags", 0) | pb.URDF_USE_INERTIA_FROM_FILE
        return pb.loadURDF(*args, physicsClientId=self._client, **kwargs)


def principal_frame_xyzw(rpy) -> np.ndarray:
    """The quaternion (xyzw) of a URDF inertial frame's rpy: where PyBullet's base frame sits in the mesh frame."""
    return np.asarray(pb.getQuaternionFromEuler([float(a) for a in rpy]), dtype=np.float64)


def mesh_frame_xyzw(base_xyzw: np.ndarray, principal_xyzw: np.ndarray) -> np.ndarray:
    """Mesh-frame orientations from PyBullet's base orientations (..., 4), both xyzw.

    PyBullet reports (and resets) a body's base in its inertial frame, which a URDF with principal
    axes rotates away from the mesh frame: q_mesh = q_base * conj(q_principal), the Hamilton product.
    """
    x1, y1, z1, w1 = np.moveaxis(np.asarray(base_xyzw, dtype=np.float64), -1, 0)
    x2, y2, z2, w2 = -principal_xyzw[..., 0], -principal_xyzw[..., 1], -principal_xyzw[..., 2], principal_xyzw[..., 3]
    return np.stack([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                     w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2], axis=-1)


def set_exact_inertia(client: int, body: int, principal_moments, volume: float, mass: float, scale: float) -> None:
    """Give `body` the principal moments of its solid (asset moments at density 1 and scale 1, scaled).

    Call it after Kubric has set the mass: PyBullet recomputes its box estimate on every mass change.
    The principal axes come from the URDF's inertial frame, set when the body was loaded.
    """
    density = mass / (volume * scale**3)
    moments = [float(m) * density * scale**5 for m in principal_moments]
    # the mass again in the same call: given the diagonal alone, PyBullet zeroes a maximal-coordinate body's mass
    pb.changeDynamics(body, -1, mass=float(mass), localInertiaDiagonal=moments, physicsClientId=client)


class SharedClient(InertiaFromFileClient):
    """A DIRECT PyBullet client for many scenes in turn; `close()` disconnects it."""

    def __init__(self) -> None:
        super().__init__(pb.DIRECT)

    def __getattr__(self, name: str):
        # Kubric's client builds a functools.partial on every call; the client id never changes here
        attribute = super().__getattr__(name)
        self.__dict__[name] = attribute
        return attribute

    def close(self) -> None:
        """Disconnect; idempotent."""
        if self._client >= 0:
            pb.disconnect(physicsClientId=self._client)
            self._client = -1

    def __del__(self) -> None:
        # quiet at interpreter exit, where Kubric's own __del__ finds the pybullet module already gone
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class ReusedClientView(PyBullet):
    """Kubric's `PyBullet` view of `scene`, on `client` with its world reset first."""

    def __init__(self, scene: core.Scene, client: SharedClient, scratch_dir: str | Path, time_step: float):
        self.scratch_dir = Path(scratch_dir)
        self._physics_client = client
        client.resetSimulation()
        client.setPhysicsEngineParameter(**KUBRIC_ENGINE_PARAMETERS)
        client.setTimeStep(time_step)  # Kubric never sets it (PyBullet's default is 1/240 s)
        core.View.__init__(self, scene, scene_observers={
            "gravity": [lambda change: self._physics_client.setGravity(*change.new)],
        })
