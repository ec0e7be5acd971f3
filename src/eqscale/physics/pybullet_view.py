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

import pybullet as pb

from eqscale.physics.kubric_compat import kb  # noqa: F401  (imports kubric without TensorFlow first)
from kubric import core  # noqa: E402
from kubric.simulator.pybullet import PyBullet, _BulletClient  # noqa: E402

# Kubric's PyBullet view sets exactly these in its constructor (against PyBullet's "sticky walls",
# bullet3 issue 3094); resetSimulation restores PyBullet's defaults, so they are set again per scene
KUBRIC_ENGINE_PARAMETERS = dict(restitutionVelocityThreshold=0.0, warmStartingFactor=0.0, useSplitImpulse=True,
                                contactSlop=0.0, enableConeFriction=False, deterministicOverlappingPairs=True)


class SharedClient(_BulletClient):
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
