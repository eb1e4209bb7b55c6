"""Training from shards: one pass for the scaler, training windows streamed shard by shard,
each DDP process reading its own shards once per epoch; the same configuration trains from one
CSV and from a folder."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from forecaster.data import FeatureSpec, SeriesScaler
from forecaster.data.frames import DataValidationError, series_offsets, validate_frame
from forecaster.data.shards import ShardWindows, assign_shards, scan_shards
from tests.conftest import SMALL, compose_cfg, run_cli, small_frame, store_uri

READ = re.compile(r"epoch (\d+): reader (\d+) read shard (\S+) \((\d+) windows\)")
SPLITS = {"val_size": 24, "test_size": 24}


def _shards(folder: Path, n_series: int = 8, per_shard: int = 2) -> list[Path]:
    frame = small_frame(n_series=n_series)
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(frame["unique_id"].unique())
    paths = []
    for k in range(0, n_series, per_shard):
        path = folder / f"part-{k // per_shard:03d}.parquet"
        frame[frame["unique_id"].isin(ids[k:k + per_shard])].to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_one_pass_gives_the_scaler_of_the_whole_panel(tmp_path):
    files = _shards(tmp_path / "shards")
    spec = FeatureSpec(24, 6, scaler="standard")
    scan = scan_shards(files, spec, **SPLITS)
    clean, _, _ = validate_frame(small_frame(n_series=8), min_length=1)
    train_end = np.diff(series_offsets(clean)[1]) - 48
    whole = SeriesScaler("standard").fit_frame(clean, train_end)
    assert scan.scaler.ids == whole.ids
    assert np.array_equal(scan.scaler.loc, whole.loc)
    assert np.array_equal(scan.scaler.scale, whole.scale)
    assert scan.series == 8 and scan.rows == len(clean)
    assert scan.tail.groupby("unique_id").size().eq(24 + 6 + 48).all()  # only the tails


def test_a_series_in_two_shards_is_refused(tmp_path):
    files = _shards(tmp_path / "shards")
    small_frame(n_series=1).to_parquet(tmp_path / "shards" / "part-999.parquet", index=False)
    with pytest.raises(DataValidationError, match="'s0' is also in another shard"):
        scan_shards([*files, tmp_path / "shards" / "part-999.parquet"], FeatureSpec(24, 6),
                    **SPLITS)


@pytest.mark.parametrize("readers", [1, 2, 3])
def test_each_reader_reads_its_own_shards_and_all_yield_as_many_batches(tmp_path, readers):
    files = _shards(tmp_path / "shards", n_series=10, per_shard=2)
    scan = scan_shards(files, FeatureSpec(24, 6), **SPLITS)
    stream = ShardWindows(scan, FeatureSpec(24, 6, freq=scan.freq), **SPLITS, stride=1,
                          fill=None, batch_size=32, seed=0)
    owners = assign_shards(scan.windows, readers)
    assert sorted(s for shards in owners for s in shards) == list(range(len(files)))
    counts = []
    for me in range(readers):
        stream.consumers = lambda me=me: (me, owners, min(
            int((scan.windows[s] // 32).sum()) for s in owners))  # as rank `me` would see it
        stream.set_epoch(0)
        counts.append(sum(1 for _ in stream))
    assert len(set(counts)) == 1 and counts[0] > 0


@pytest.mark.slow  # the default run covers the readers' split (above) in one process
def test_ddp_two_processes_read_each_shard_once_per_epoch(tmp_path):
    _shards(tmp_path / "shards", n_series=8, per_shard=2)
    proc = run_cli(["trainer=ddp", "trainer.devices=2", *SMALL,
                    f"data.path={tmp_path / 'shards'}", "trainer.max_epochs=2",
                    f"logger.tracking_uri={store_uri(tmp_path)}",
                    f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    reads = [(int(e), int(r), s) for e, r, s, _ in READ.findall(out)]
    assert {r for _, r, _ in reads} == {0, 1}  # both processes read
    for epoch in (0, 1):
        shards = Counter(s for e, _, s in reads if e == epoch)
        assert shards == Counter({f"part-{k:03d}.parquet": 1 for k in range(4)}), reads
    readers = {s: {r for _, r, t in reads if t == s} for _, _, s in reads}
    assert all(len(r) == 1 for r in readers.values())  # disjoint: a shard has one reader
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert run.info.status == "FINISHED" and "test/mase" in run.data.metrics


def test_the_same_configuration_trains_from_one_csv_and_from_shards(tmp_path, small_csv):
    """The configuration of every other training test (SMALL, a CSV) with a glob of shards."""
    from forecaster.training import train

    _shards(tmp_path / "shards")
    cfg = compose_cfg(tmp_path, [*SMALL, f"data.path={tmp_path}/shards/*.parquet",
                                 "registry.enabled=false",
                                 f"logger.tracking_uri={store_uri(tmp_path)}"])
    result = train(cfg)
    assert np.isfinite(result.metrics["test/mase"])
    client = MlflowClient(store_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name("forecaster").experiment_id])
    assert run.info.status == "FINISHED"


def test_shards_need_the_sizes_set(tmp_path):
    from forecaster.datamodule import DataModule
    from forecaster.errors import ConfigError

    _shards(tmp_path / "shards")
    for sizes in ({"val_size": 24}, {"input_size": 24}):
        with pytest.raises(ConfigError, match="folder or glob of shards"):
            DataModule(source="csv", path=str(tmp_path / "shards"), horizon=6, test_size=24,
                       **sizes).load()
