"""Split-conformal prediction intervals, per horizon step, in units of the window's scale.

On calibration windows (the validation split, never the test split) the score of step ``h``
of window ``i`` is ``r_ih = |y_ih - y_hat_ih| / s_i``, with ``s_i`` the std of the window's
input (``forecaster.nn.window_scale``). For a level ``a`` the radius of step ``h`` is the
``ceil((n + 1) a)``-th smallest of the ``n`` scores of that step, the finite-sample quantile of
split conformal prediction; a new window's interval is ``y_hat_h -/+ radius_h * s``. As ``s``
scales with the series, the intervals are scale-free like the forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def interval_quantiles(levels: Sequence[float]) -> list[float]:
    """The output quantiles of central intervals at ``levels`` plus the median, ascending:
    ``[0.8, 0.95]`` -> ``[0.025, 0.1, 0.5, 0.9, 0.975]``."""
    out = {0.5}
    for a in levels:
        out.update((round((1 - a) / 2, 10), round((1 + a) / 2, 10)))
    return sorted(out)


def calibrate(point: np.ndarray, actual: np.ndarray, scale: np.ndarray,
              levels: Sequence[float]) -> np.ndarray:
    """Radii ``[len(levels), H]`` (in window-scale units) of the central intervals.

    Args:
        point: ``[N, H]`` point forecasts of the calibration windows.
        actual: ``[N, H]`` their actual values.
        scale: ``[N]`` the windows' scales.
        levels: nominal coverages in (0, 1), e.g. ``[0.8, 0.95]``.
    """
    if any(not 0 < a < 1 for a in levels):
        raise ValueError(f"interval levels must lie in (0, 1), got {list(levels)}")
    scores = np.sort(np.abs(actual - point) / scale[:, None], axis=0)  # [N, H]
    n = len(scores)
    if n == 0:
        raise ValueError("conformal calibration needs at least one validation window")
    ranks = [min(int(np.ceil((n + 1) * a)), n) - 1 for a in levels]
    return scores[ranks].astype(np.float64)  # [len(levels), H]


def apply(point: np.ndarray, scale: np.ndarray, levels: Sequence[float],
          radius: np.ndarray) -> np.ndarray:
    """Values ``[B, H, Q]`` at :func:`interval_quantiles` (levels) from point forecasts
    ``[B, H]`` and window scales ``[B]``."""
    order = sorted(range(len(levels)), key=lambda k: -levels[k])  # widest first
    lo = [point - radius[k] * scale[:, None] for k in order]
    hi = [point + radius[k] * scale[:, None] for k in reversed(order)]
    return np.stack([*lo, point, *hi], axis=-1)
