"""The names of the update's precision and compile modes: what the recipes' options may say.

Kept apart from :mod:`~maxent_components.training.update` (which needs PyTorch) so that a recipe's
option schema, and its ``--help``, load without it.
"""

__all__ = ["AUTOCAST_DTYPES", "COMPILE_MODES"]

#: The dtypes ``autocast`` may name (``"none"``: the update runs in the parameters' float32).
AUTOCAST_DTYPES = ("none", "bfloat16")
#: The ``torch.compile`` modes ``compile`` may name (``"none"``: the update runs eagerly).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
