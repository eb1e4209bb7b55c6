"""Fixtures of the evaluation tests: an untrained model over a small hourly panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.data import FeatureSpec, build_datasets
from forecaster.models import Forecaster
from forecaster.nn import RNNForecastNet
from tests.conftest import small_frame


def ragged_frame() -> pd.DataFrame:
    """Three hourly series of different lengths (so origins differ per series)."""
    df = small_frame(n_series=3, length=240, seed=1)
    return df[~((df["unique_id"] == "s1") & (df.groupby("unique_id").cumcount() >= 200))]


def make_forecaster(df: pd.DataFrame, quantiles=(0.1, 0.5, 0.9), calendar=("hour",),
                    input_size: int = 24, horizon: int = 6, seed: int = 0) -> Forecaster:
    """A randomly initialised model whose spec and scaler are fitted on ``df``."""
    spec = FeatureSpec(input_size=input_size, horizon=horizon, calendar=tuple(calendar))
    data = build_datasets(df, spec, val_size=0, test_size=2 * horizon)
    torch.manual_seed(seed)
    net_config = dict(n_features=data.spec.n_features, horizon=horizon, hidden_size=8,
                      n_futr=data.spec.n_futr, n_outputs=max(len(quantiles), 1))
    return Forecaster(RNNForecastNet(**net_config), net_config, data.spec, data.scaler,
                      list(quantiles), season_length=24)


@pytest.fixture
def frame() -> pd.DataFrame:
    return ragged_frame()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
