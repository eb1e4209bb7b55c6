"""Choices made from the data and from validation windows: seasons, sizes, members, intervals."""

import numpy as np
import pytest

from forecaster.models import conformal
from forecaster.models.ensemble import (
    default_input_size,
    default_val_size,
    member_configs,
    select,
)


def test_default_sizes_follow_the_seasons_and_fit_the_history():
    assert default_input_size([24, 168], 48, room=10_000) == 336
    assert default_input_size([52], 52, room=10_000) == 104
    assert default_input_size([], 12, room=10_000) == 24
    assert default_input_size([24, 168], 48, room=200) == 200  # shortened to what fits
    assert default_val_size(48, room=10_000) == 144
    assert default_val_size(48, room=60) == 60
    assert default_val_size(48, room=10) == 48


def test_members_cross_lengths_variants_and_seeds():
    configs = member_configs({"season_length": 24}, input_sizes=[336, 96], linear=[True, False],
                             seeds=2, lags=[24, 168], rnn_steps=None)
    assert len(configs) == 8
    long, short = configs[0], configs[-1]
    assert long["lags"] == [24, 168] and long["rnn_steps"] == 48 and long["linear"]
    assert short["lags"] == [24] and short["rnn_steps"] == 48 and not short["linear"]


def test_segment_members_read_whole_seasons_without_lag_channels():
    """model.segment=season: two weeks of hourly values are 14 steps of a day each; a window
    shorter than one segment keeps the step-by-step cell and its lags."""
    configs = member_configs({"season_length": 24}, input_sizes=[336, 12], linear=[True],
                             seeds=1, lags=[24, 168], rnn_steps=None, segment=24)
    long, short = configs  # a week of days beside the same days a week earlier
    assert (long["segment"], long["rnn_steps"], long["lags"]) == (24, 7, [168])
    assert (short["segment"], short["rnn_steps"], short["lags"]) == (0, 12, [])
    plain = member_configs({"season_length": 24}, input_sizes=[336], linear=[True], seeds=1,
                           lags=[24], rnn_steps=None, segment=24)[0]
    assert (plain["rnn_steps"], plain["lags"]) == (14, [])  # model.lags=false: two weeks
    capped = member_configs({"season_length": 24}, input_sizes=[336], linear=[True], seeds=1,
                            lags=[], rnn_steps=3, segment=24)[0]
    assert capped["rnn_steps"] == 3  # the last three days only
    # auto (shorter_only): segments only where they shorten the unroll. Daily data: 64 weeks
    # would be longer than the step cell's two weeks (14 days, lag 7 beside them)
    daily = member_configs({"season_length": 7}, input_sizes=[450], linear=[True], seeds=1,
                           lags=[7, 365], rnn_steps=None, segment=7, shorter_only=True)[0]
    assert (daily["segment"], daily["rnn_steps"], daily["lags"]) == (0, 14, [7])
    hourly = member_configs({"season_length": 24}, input_sizes=[336], linear=[True], seeds=1,
                            lags=[24, 168], rnn_steps=None, segment=24, shorter_only=True)[0]
    assert (hourly["segment"], hourly["rnn_steps"]) == (24, 7)


def test_greedy_selection_keeps_the_members_that_help():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(200, 5))
    good = [actual + rng.normal(scale=0.3, size=actual.shape) for _ in range(3)]
    bad = [actual + 3 + rng.normal(size=actual.shape) for _ in range(2)]
    forecasts = np.stack([bad[0], *good, bad[1]])  # [K, N, H]
    chosen, path = select(forecasts, actual, np.ones(200))
    assert sorted(chosen) == [1, 2, 3]
    assert all(b < a for a, b in zip(path, path[1:]))  # each addition lowered the error


def test_interval_quantiles_always_hold_the_median():
    assert conformal.interval_quantiles([0.8, 0.95]) == [0.025, 0.1, 0.5, 0.9, 0.975]
    assert conformal.interval_quantiles([]) == [0.5]


def test_split_conformal_covers_at_the_nominal_level_in_scale_units():
    """Residuals proportional to the window scale: calibrated on one sample, the intervals
    cover a fresh one at the nominal rate, whatever each window's units."""
    rng = np.random.default_rng(1)

    def sample(n):
        scale = rng.lognormal(0, 2, n)  # windows of very different units
        point = rng.normal(size=(n, 4)) * scale[:, None]
        return point, point + rng.standard_t(5, size=(n, 4)) * scale[:, None], scale

    levels = [0.8, 0.95]
    radius = conformal.calibrate(*sample(4000), levels)
    assert radius.shape == (2, 4) and (radius[1] > radius[0]).all()
    point, actual, scale = sample(4000)
    values = conformal.apply(point, scale, levels, radius)  # [N, H, 5]
    assert np.array_equal(values[..., 2], point)
    for k, level in enumerate(levels):
        lo, hi = values[..., 1 - k], values[..., 3 + k]
        assert abs(np.mean((actual >= lo) & (actual <= hi)) - level) < 0.02
    with pytest.raises(ValueError, match="levels must lie in"):
        conformal.calibrate(point, actual, scale, [80])
