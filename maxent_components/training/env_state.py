"""Saving and restoring the state of a Gymnasium environment inside a TorchRL ``GymEnv``, for resume.

Most environments pickle with their whole state (positions, counters, random generator). Those
built on Gymnasium's ``EzPickle`` (the MuJoCo tasks among them) pickle only their constructor
arguments, so a pickle would come back as a *fresh* environment: for MuJoCo tasks the simulator
data (``MjData``, which pickles exactly) is saved instead with the random generator and the
wrappers' counters, and restored with ``mujoco.mj_copyData``. Any other ``EzPickle`` environment has
no saved state (``None``): a resumed run then starts a new episode there. Several copies stepped
together (a ``SyncVectorEnv``) are saved copy by copy, by the same rules.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["env_state", "restore_env_state"]

_WRAPPER_FIELDS = ("_elapsed_steps", "_has_reset", "_disable_render_order_enforcing")


def gym_env(env) -> Any:
    """The Gymnasium environment inside a TorchRL ``GymEnv`` (or a ``TransformedEnv`` of one), or ``None``."""
    return getattr(getattr(env, "base_env", env), "_env", None)


def _chain(outer) -> list:
    chain = [outer]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    return chain


def env_state(env) -> dict[str, Any] | None:
    """The state of ``env`` that :func:`restore_env_state` puts back, or ``None`` if it cannot be saved."""
    outer = gym_env(env)
    if outer is None:
        return None
    copies = _copies(outer)
    if copies is None:
        return _state(outer)
    states = [_state(copy) for copy in copies]
    return None if any(state is None for state in states) else {"copies": states}


def restore_env_state(env, state: dict[str, Any] | None) -> bool:
    """Put back a state of :func:`env_state`; ``False`` (nothing done) when there is none."""
    outer = gym_env(env)
    if state is None or outer is None:
        return False
    copies = _copies(outer)
    if copies is None:
        getattr(env, "base_env", env)._env = _restored(outer, state)
    else:
        if len(copies) != len(state["copies"]):
            raise ValueError(f"the saved state is of {len(state['copies'])} environments, this env steps {len(copies)}")
        copies[:] = [_restored(copy, saved) for copy, saved in zip(copies, state["copies"])]
    return True


def _copies(outer) -> list | None:
    """The environments a ``SyncVectorEnv`` steps (its own list), or ``None`` for a single environment."""
    from gymnasium.vector import SyncVectorEnv

    return outer.envs if isinstance(outer, SyncVectorEnv) else None


def _state(outer) -> dict[str, Any] | None:
    from gymnasium.utils import EzPickle

    core = outer.unwrapped
    if not isinstance(core, EzPickle):
        try:
            return {"pickle": pickle.dumps(outer)}
        except Exception:  # handles, renderers
            return None
    if hasattr(core, "data") and hasattr(core, "model"):
        wrappers = [{k: getattr(w, k) for k in _WRAPPER_FIELDS if hasattr(w, k)} for w in _chain(outer)]
        return {"mujoco_data": pickle.dumps(core.data), "rng": core.np_random.bit_generator.state, "wrappers": wrappers}
    return None


def _restored(outer, state: dict[str, Any]):
    """``outer`` in ``state``: the unpickled environment, or ``outer`` with its simulator state put back."""
    if "pickle" in state:
        return pickle.loads(state["pickle"])
    import mujoco

    core = outer.unwrapped
    mujoco.mj_copyData(core.data, core.model, pickle.loads(state["mujoco_data"]))
    core.np_random.bit_generator.state = state["rng"]
    for wrapper, fields in zip(_chain(outer), state["wrappers"]):
        for key, value in fields.items():
            setattr(wrapper, key, value)
    return outer
