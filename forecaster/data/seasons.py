"""Season lengths of a frequency: the periods that repeat in the data (hourly 24 and 168...).

The model's seasonal lags and base, MASE and seasonal naive all read them from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Season lengths by pandas frequency prefix (the period that repeats), as in neuralforecast.
_SEASONS = {"h": 24, "min": 60, "s": 60, "d": 7, "b": 5, "w": 52, "m": 12, "ms": 12, "me": 12,
            "q": 4, "qs": 4, "qe": 4, "y": 1, "ys": 1, "ye": 1, "a": 1}

def infer_season_length(freq) -> int:
    """Season length for a pandas frequency string (``"h"`` -> 24, ``"W-SAT"`` -> 52...); 1 if unknown."""
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return 1
    name = offset.name.split("-")[0].lower()
    base = _SEASONS.get(name, _SEASONS.get(name.rstrip("es"), 1))
    if name in ("h", "min", "s") and offset.n > 1:  # e.g. 30min -> 48 per day
        per_day = {"h": 24, "min": 1440, "s": 86400}[name] // offset.n
        return max(int(per_day), 1)
    if name == "d" and offset.n > 1:  # e.g. 7D (weekly data) -> 52 per year
        return max(round(365.25 / offset.n), 1)
    return base

def infer_seasons(freq, history: int | None = None) -> list[int]:
    """Every season length of a frequency, the primary (``infer_season_length``) first.

    Sub-daily data has a daily and a weekly season (hourly 24 and 168, half-hourly 48 and 336,
    15-minute 96 and 672); daily data 7, and 365 when ``history`` holds three years; other
    frequencies their one season (weekly 52, monthly 12, quarterly 4); yearly or integer steps
    none. A season needs ``history`` (the shortest series' length, when given) to hold three
    of its periods.
    """
    m = infer_season_length(freq)
    if m <= 1:
        return []
    seasons = [m]
    name = pd.tseries.frequencies.to_offset(freq).name.split("-")[0].lower()
    if name in ("h", "min", "s") and m > 1:
        seasons.append(7 * m)  # the week
    elif name == "d" and m == 7:
        seasons.append(365)
    return [s for s in seasons if history is None or 3 * s <= history]

