"""The benchmark protocols reproduce the published baseline figures (../shared/data/README.md)."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.datasets import benchmark_file, load_dataset
from forecaster.evaluation import baseline_forecasts, protocols, score_methods
from forecaster.evaluation import metrics as M
from forecaster.evaluation.protocols.etth1 import scaled_errors, standard_stats
from forecaster.evaluation.protocols.m4 import owa
from tests.conftest import ROOT

DATA_DIR = ROOT.parent / "shared" / "data"


def _require(*names):
    missing = [n for n in names if not (DATA_DIR / n).is_file()]
    if missing:
        pytest.skip(f"benchmark files {missing} are not in {DATA_DIR} (see its README for sources)")


def test_m4_hourly_baselines_match_the_published_table():
    _require("M4-Hourly-train.csv", "M4-Hourly-test.csv")
    df = load_dataset("m4_hourly", data_dir=DATA_DIR)
    ids = list(df["unique_id"].unique())
    lengths = df.groupby("unique_id", sort=False).size().to_numpy()
    assert len(ids) == 414 and lengths.min() == 700 + 48
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    y = df["y"].to_numpy(np.float64)
    series, t = np.arange(len(ids)), lengths - 48  # the M4 test part: one window per series
    fc = baseline_forecasts(["naive", "seasonal_naive", "naive2"], y, offsets, series, t, 48, 24)
    actual = y[offsets[:-1, None] + t[:, None] + np.arange(48)]
    scale = M.seasonal_scales(y, offsets, series, t, 24)  # the whole training part
    table = score_methods(actual, fc, scale, series, ids)[0]
    table = table.assign(owa=owa(table))
    expected = {"naive": (43.003, 11.608), "seasonal_naive": (13.912, 1.193),
                "naive2": (18.383, 2.395)}
    for name, (smape, mase) in expected.items():
        assert round(table.loc[name, "smape"], 3) == smape, name
        assert round(table.loc[name, "mase"], 3) == mase, name
    assert table.loc["naive2", "owa"] == 1.0


@pytest.mark.parametrize("horizon,mse,mae", [(24, 0.034, 0.139), (96, 0.069, 0.203)])
def test_etth1_repeat_last_value_matches_the_published_figures(horizon, mse, mae):
    _require("ETTh1.csv")
    y = load_dataset("etth1", data_dir=DATA_DIR)["y"].to_numpy(np.float64)
    assert len(y) == 14_400  # the Informer protocol's rows
    _, std = standard_stats(y, 8_640)
    t = np.arange(11_520, 14_400 - horizon + 1)  # every test window, stride 1
    actual = y[t[:, None] + np.arange(horizon)]
    naive = baseline_forecasts(["naive"], y, np.array([0, len(y)]), np.zeros_like(t), t,
                               horizon, 24)
    out = scaled_errors(actual, naive, std)
    assert (round(out.loc["naive", "mse"], 3), round(out.loc["naive", "mae"], 3)) == (mse, mae)


def test_benchmark_file_resolves_relative_data_dir_from_anywhere(tmp_path, monkeypatch):
    _require("ETTh1.csv")
    monkeypatch.chdir(tmp_path)  # ../shared/data is then resolved against the repository root
    assert benchmark_file("ETTh1.csv", "../shared/data").resolve() == (DATA_DIR / "ETTh1.csv").resolve()


def test_protocols_are_found_by_name_and_by_source():
    assert {"rolling", "m4", "etth1"} <= set(protocols.names())
    assert protocols.for_source("m4_hourly").name == "m4"
    assert protocols.for_source("etth1").name == "etth1"
    assert protocols.for_source("co2").name == protocols.get("none").name == "rolling"
    assert protocols.get("m4").windows(48) == (1, 48)
    assert protocols.get("etth1").windows(96) == (2_880 - 96 + 1, 1)
    assert protocols.get("rolling").windows(12) == (4, 12)
    with pytest.raises(ValueError, match="protocol must be auto, none or one of"):
        protocols.get("m5")


def test_a_new_protocol_is_one_registered_class():
    @protocols.register
    class Weekly(protocols.Protocol):
        name, sources, summary = "weekly_test", ("my_weekly",), ("mae",)

        def windows(self, horizon):
            return 2, 7

    try:
        assert protocols.for_source("my_weekly").windows(7) == (2, 7)
        import pandas as pd

        table = pd.DataFrame({"mae": [1.0, 2.0]}, index=["model", "naive"])
        assert protocols.get("weekly_test").flat(table, "test") == {
            "test/mae": 1.0, "test_naive/mae": 2.0}
    finally:
        from forecaster.evaluation.protocols import base

        base._PROTOCOLS.pop("weekly_test")

