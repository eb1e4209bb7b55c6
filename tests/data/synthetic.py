"""Small synthetic long frames shared by the data-layer tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def long_frame(lengths=(40, 50), freq="h", start="2024-01-01", seed=0, integer=False) -> pd.DataFrame:
    """Series ``s0, s1, ...`` of the given lengths with a level per series and noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate(lengths):
        ds = np.arange(n) * 2 + 10 if integer else pd.date_range(start, periods=n, freq=freq)
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": 10.0 * (k + 1) + rng.normal(size=n)}))
    return pd.concat(parts, ignore_index=True)
