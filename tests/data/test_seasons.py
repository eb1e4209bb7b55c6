"""Season lengths from the frequency (and the history): what the model, MASE and seasonal
naive read."""

import pytest

from forecaster.data.seasons import infer_season_length, infer_seasons


@pytest.mark.parametrize("freq,m", [("h", 24), ("30min", 48), ("D", 7), ("7D", 52), ("W-SAT", 52),
                                    ("MS", 12), ("QS", 4), ("YS", 1), (1, 1), (None, 1)])
def test_season_length_from_frequency(freq, m):
    assert infer_season_length(freq) == m


@pytest.mark.parametrize("freq,history,seasons", [
    ("h", 10_000, [24, 168]), ("h", 300, [24]), ("30min", 4_000, [48, 336]),
    ("15min", 10_000, [96, 672]), ("D", 400, [7]), ("D", 2_000, [7, 365]), ("W-SAT", 500, [52]),
    ("7D", 500, [52]), ("MS", 100, [12]), ("ME", 100, [12]), ("QS", 40, [4]), ("YS", 100, []),
    (1, 1000, []),
])
def test_seasons_from_the_frequency_and_the_history(freq, history, seasons):
    assert infer_seasons(freq, history) == seasons
