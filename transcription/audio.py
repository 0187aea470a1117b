"""Loudness of decoded audio, for the guards that only apply to quiet stretches."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SILENCE_DBFS = -120.0  # what digital silence reports instead of -inf


def loudness_profile(samples: np.ndarray, sample_rate: int) -> Callable[[float, float], float]:
    """Return level_dbfs(start, end): RMS level in dBFS of samples between two times."""
    import numpy as np

    # A running sum of squares answers every segment's query in O(1).
    energy = np.concatenate(([0.0], np.cumsum(np.square(samples, dtype=np.float64))))
    count = len(samples)

    def level_dbfs(start: float, end: float) -> float:
        first = min(max(int(start * sample_rate), 0), count)
        last = min(max(int(end * sample_rate), first), count)
        if last - first < 1:
            return SILENCE_DBFS
        mean_square = (energy[last] - energy[first]) / (last - first)
        if mean_square <= 0.0:
            return SILENCE_DBFS
        return max(SILENCE_DBFS, 10.0 * math.log10(mean_square))

    return level_dbfs
