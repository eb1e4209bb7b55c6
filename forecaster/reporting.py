"""What a training run tells a person in the MLflow UI, from the run's config and results:
the data it read, what it trained, how it compares, and where its model went.

The wording lives in ``forecaster.tracking.describe``; this module gathers the facts from the
config and the data, which the tracking layer does not import.
"""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from forecaster.datasets import source_uri
from forecaster.tracking import describe


def model_in_words(cfg: DictConfig, input_size: int) -> str:
    """"median of 1 x 64 BasicRNNCell (tanh) members, mae loss, 52 steps from 104"."""
    m = cfg.model
    loss = f"{m.loss} loss"
    if m.loss == "pinball" and m.get("quantiles"):
        loss += " on q" + "/".join(f"{q:g}" for q in m.quantiles)
    return (f"median of {m.num_layers} x {m.hidden_size} BasicRNNCell ({m.activation}) members, "
            f"{loss}, {cfg.horizon} steps from {input_size}")


def describe_run(cfg: DictConfig, client: MlflowClient, run_id: str, df: pd.DataFrame, data,
                 table: dict[str, dict[str, float]], decision) -> None:
    """Log into the active run: the data input, the comparison metrics and table, and the
    descriptions of the run, its experiment and (when registered) the model and version.

    Args:
        df: the long frame as loaded (before filling); data: its ``Datasets``.
        table: method -> test metrics, as ``score`` returns them.
        decision: the registry ``Decision``, or None when registration is off.
    """
    d = cfg.data
    name = describe.source_name(d.get("path"), d.source)
    n_series = len(data.panel.ids)
    describe.log_data_input(df, source_uri(d.source, d.get("path"), d.get("loader")), name, data.freq, n_series,
                            "training")
    describe.log_comparison(table)
    summary = (f"{n_series} series, {len(df):,} rows, frequency {data.freq}; "
               f"tested on the last {d.test_size} steps of each")
    describe.describe_training(client, run_id, what=model_in_words(cfg, data.spec.input_size), data_name=name,
                               data_summary=summary, table=table, decision=decision)
