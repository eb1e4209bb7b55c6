"""What the model is made of, decided from the data and then from validation windows only.

Before training (:func:`design`): the seasons from the frequency, the input length from the
seasons and the history available, and the members of the ensemble (seeds x input lengths x
with / without the NLinear path). After training (:func:`select`): the members the median
ensemble keeps, chosen greedily on validation windows. The test split is never read here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Design:
    """The data-driven choices of a run.

    Attributes:
        seasons: season lengths, the primary first (empty for none).
        season_length: the primary season (MASE scale, seasonal naive base), 1 for none.
        input_size: the window length the batches carry (the longest member's).
        val_size: validation steps at the end of each series' training part.
    """

    seasons: tuple[int, ...]
    season_length: int
    input_size: int
    val_size: int


def default_input_size(seasons: Sequence[int], horizon: int, room: int) -> int:
    """Two periods of the longest season (at least the horizon, and 2 * horizon without a
    season), shortened to ``room``, the longest window the shortest series allows."""
    wanted = 2 * max(seasons) if seasons else 2 * horizon
    return max(1, min(max(wanted, horizon), room))


def default_val_size(horizon: int, room: int) -> int:
    """Validation steps: three horizons where the history allows (more validation windows for
    early stopping, member selection and calibration), at least one horizon."""
    return max(horizon, min(3 * horizon, room))


def member_configs(base: dict, *, input_sizes: Sequence[int], linear: Sequence[bool | str],
                   seeds: int, lags: Sequence[int], rnn_steps: int | None,
                   segment: int = 0, shorter_only: bool = False) -> list[dict]:
    """The keyword arguments of every member: ``seeds`` members per input length and
    ``linear`` variant (``True``: the cell's head and the linear path; ``False``: the head
    alone; ``"only"``: the linear path alone, NLinear on the base). A member's lag channels
    are the seasons that fit twice in its window; its cell unrolls over ``rnn_steps``, by
    default two primary seasons (the lag channels bring the longer past), at most the window
    less the longest lag. With ``segment`` P the cell reads P steps at once, over as many
    segments as the window holds beside the longest lag (``rnn_steps`` of them at most), with
    lag channels for the seasons longer than P only; with ``shorter_only``, only where that
    unrolls over fewer steps than the step-by-step cell."""
    configs = []
    m = base.get("season_length", 1)
    for L, lin, _ in itertools.product(input_sizes, linear, range(seeds)):
        if lin not in (True, False, "only"):
            raise ValueError(f"model.linear takes true, false or only, got {lin!r}")
        own_lags = [s for s in lags if 2 * s <= L]
        room = L - max(own_lags, default=0)
        seg, T = 0, min(rnn_steps or (min(room, 2 * m) if m > 1 else room), room)
        if segment:  # the cell reads the previous segments: lags of longer seasons only
            seg_lags = [s for s in own_lags if s > segment]
            fit = (L - max(seg_lags, default=0)) // segment
            segments = min(rnn_steps or fit, fit)
            if segments and not (shorter_only and segments >= T):
                own_lags, seg, T = seg_lags, segment, segments
        configs.append({**base, "input_size": int(L), "linear": lin is not False, "lags": own_lags,
                        "rnn_steps": int(T), "rnn": lin != "only", "segment": seg})
    return configs


def select(member_forecasts: np.ndarray, actual: np.ndarray, scale: np.ndarray,
           max_members: int | None = None, squared: bool = False) -> tuple[list[int], list[float]]:
    """Greedy forward selection (Caruana et al., 2004) of the members whose median forecast
    has the lowest scaled MAE (MSE with ``squared``) on the validation windows.

    Args:
        member_forecasts: ``[K, N, H]`` every member's point forecast of the N windows.
        actual: ``[N, H]`` the actual values.
        scale: ``[N]`` each window's scale (errors are divided by it).
        max_members: stop at this many (default: K).

    Returns:
        ``(chosen, path)``: member indices in the order they were added, and the validation
        error after each addition. Selection stops when no member lowers the error.
    """
    K = len(member_forecasts)
    power = 2 if squared else 1

    def loss(idx: list[int]) -> float:
        med = np.median(member_forecasts[idx], axis=0)
        return float(((np.abs(med - actual) / scale[:, None]) ** power).mean())

    chosen = [int(np.argmin([loss([k]) for k in range(K)]))]
    path = [loss(chosen)]
    while len(chosen) < (max_members or K):
        rest = [k for k in range(K) if k not in chosen]
        if not rest:
            break
        scores = [loss(chosen + [k]) for k in rest]
        best = int(np.argmin(scores))
        if scores[best] >= path[-1]:
            break
        chosen.append(rest[best])
        path.append(scores[best])
    return chosen, path
