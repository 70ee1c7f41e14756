"""Work-arounds for costs in our dependencies, each justified by a measurement."""

from __future__ import annotations

import importlib.util
import sys


def skip_absent_pandas_lookup() -> None:
    """Record once that pandas is not installed.

    tensordict 0.14 asks ``importlib.util.find_spec("pandas")`` inside ``TensorDict.from_any``,
    which runs on every ``TensorDictModule`` call. With pandas absent that lookup scans
    ``sys.path`` each time: a 2×128 MLP on a batch of 128 measured ≈ 500 µs per module call with
    the scan and ≈ 200 µs without (CPU time, one thread). A ``None`` entry in ``sys.modules`` makes
    the lookup a dictionary hit and ``import pandas`` raise ``ImportError`` exactly as before.
    Nothing changes when pandas is installed.
    """
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None
