"""Runs a person reads in the MLflow UI: the training data as a dataset input, descriptions on
the experiment, the run, the registered model and its versions, and the test comparison as
metrics that chart side by side.

Descriptions are MLflow's ``mlflow.note.content`` tags (experiment, run) and the registry's
description fields, all Markdown. A description someone wrote by hand is never overwritten;
the model version's description is ours (one per training) and evaluation runs append to it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from forecaster.tracking.store import registry_lock, retry_lost_insert

COMPARE = "test_compare"  # test_compare/<metric>/<method>: one chart section, methods adjacent
SHARED_METRICS = ("mae", "rmse", "smape", "mase")
# One line per paragraph: the UI renders a newline inside a paragraph as a line break.
EXPERIMENT_NOTE = "\n".join([
    "Runs of `python -m pipelines.train`: each trains the BasicRNNCell forecaster on one data "
    "config, scores it on the last `data.test_size` steps of every series beside **naive** and "
    "**seasonal naive**, logs the model and registers it (`champion` only when it beats seasonal "
    "naive and the current champion on test MASE).",
    "",
    "* Compare runs on the `test_compare/<metric>/<method>` charts; `test/*` are the model's.",
    "* Each run's description says what was trained on what; *Datasets* names the data.",
    "* Runs tagged `forecaster.task = evaluate` are backtests by `python -m pipelines.evaluate`, "
    "named after the model version they scored.",
])
MODEL_NOTE = "\n".join([
    "The BasicRNNCell forecaster (TensorFlow's cell, written out in torch). Alias **champion**: "
    "the version serving uses (`bentoml serve` loads `models:/{name}@champion`); a version gets it "
    "when its test MASE beats seasonal naive's and the previous champion's, else **challenger**.",
    "",
    "Load anywhere: `mlflow.pyfunc.load_model(\"models:/{name}@champion\").predict(frame)` with a "
    "long frame `unique_id, ds, y`.",
])


def run_link(experiment_id: str, run_id: str, text: str) -> str:
    """A Markdown link to a run page, relative to the UI (it works on any host)."""
    return f"[{text}](#/experiments/{experiment_id}/runs/{run_id})"


def version_link(name: str, version: str) -> str:
    return f"[{name} v{version}](#/models/{name}/versions/{version})"


def log_data_input(df: pd.DataFrame, source_uri: str, name: str, freq, n_series: int,
                   context: str) -> None:
    """``mlflow.log_input`` of a run's frame: source, digest, rows, series, frequency.

    Args:
        df: the long frame as loaded; source_uri: the file or URL it came from.
        name: its name in the UI; context: ``training`` or ``evaluation``.
    """
    with warnings.catch_warnings():
        # MLflow resolves a plain path by asking every source type, which warns that two match;
        # its digest calls a pandas method that pandas 3 deprecates. Neither is ours to fix.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        warnings.filterwarnings("ignore", message="Starting with pandas version 4.0")
        source = HTTPDatasetSource(source_uri) if source_uri.startswith("http") else source_uri
        dataset = mlflow.data.from_pandas(df, source=source, name=name, targets="y")
    tags = {"rows": str(len(df)), "series": str(n_series), "frequency": str(freq)}
    retry_lost_insert(lambda: mlflow.log_input(dataset, context=context, tags=tags))


def comparison(table: Mapping[str, Mapping[str, float]], reference: str = "seasonal_naive"
               ) -> pd.DataFrame:
    """One row per method, the shared metrics, and each method's MASE relative to ``reference``."""
    frame = pd.DataFrame.from_dict(table, orient="index")[list(SHARED_METRICS)]
    frame.insert(0, "method", frame.index)
    if reference in table:
        frame[f"mase_vs_{reference}"] = frame["mase"] / table[reference]["mase"]
    return frame.reset_index(drop=True)


def log_comparison(table: Mapping[str, Mapping[str, float]]) -> None:
    """``test_compare/<metric>/<method>`` metrics and the ``test_comparison.json`` table."""
    frame = comparison(table)
    mlflow.log_metrics({f"{COMPARE}/{metric}/{row.method}": float(getattr(row, metric))
                        for row in frame.itertuples() for metric in SHARED_METRICS
                        if pd.notna(getattr(row, metric))})
    mlflow.log_table(frame, "test_comparison.json")


def headline(table: Mapping[str, Mapping[str, float]], bold: bool = True) -> str:
    """"test MASE **0.812** vs seasonal naive 1.092 (26 % lower), naive 4.669"."""
    ours, ref = table["model"]["mase"], table.get("seasonal_naive", {}).get("mase")
    text = f"test MASE {'**' * bold}{ours:.3f}{'**' * bold}"
    if ref:
        change = (ours - ref) / ref * 100
        text += f" vs seasonal naive {ref:.3f} ({abs(change):.0f} % {'lower' if change < 0 else 'higher'})"
    if "naive" in table:
        text += f", naive {table['naive']['mase']:.3f}"
    return text


def set_note_once(client: MlflowClient, experiment_id: str, text: str) -> None:
    """The experiment's description, unless it has one."""
    def write() -> None:
        if MLFLOW_RUN_NOTE not in client.get_experiment(experiment_id).tags:
            client.set_experiment_tag(experiment_id, MLFLOW_RUN_NOTE, text)

    retry_lost_insert(write)


def describe_registered(client: MlflowClient, decision, subject: str, run_md_link: str,
                        table: Mapping[str, Mapping[str, float]]) -> None:
    """The registered model's description (unless it has one) and the new version's.

    Args:
        subject: what was trained on what, in words.
        run_md_link: a Markdown link to the training run.
    """
    if not client.get_registered_model(decision.name).description:
        client.update_registered_model(decision.name, MODEL_NOTE.format(name=decision.name))
    # plain text first: the versions table shows the description's start, unrendered
    text = (f"{decision.alias}, {headline(table, bold=False)}. Trained in run {run_md_link}: "
            f"{subject}.\n\nGate: {'; '.join(decision.reasons)}.\n\n"
            "**Evaluations** (`pipelines.evaluate`):\n")
    client.update_model_version(decision.name, decision.version, text)


def add_evaluation(client: MlflowClient, name: str, version: str, line: str) -> None:
    """Append ``line`` (a Markdown list item) to a model version's description.

    A read, then a write: under ``registry_lock``, two evaluations of one version finishing
    together both keep their line.
    """
    with registry_lock(client.tracking_uri):
        current = client.get_model_version(name, version).description or ""
        client.update_model_version(name, version, f"{current.rstrip()}\n* {line}\n")


def describe_training(client: MlflowClient, run_id: str, *, what: str, data_name: str,
                      data_summary: str, table: Mapping[str, Mapping[str, float]],
                      decision) -> None:
    """Descriptions of a finished training run, its experiment and its registered version.

    Args:
        what: the model in words ("1 x 64 BasicRNNCell, pinball loss on q0.1/0.5/0.9").
        data_name: the data source's name; data_summary: its shape in words.
        table: method -> test metrics (``model``, ``naive``, ``seasonal_naive``).
        decision: the registry ``Decision``, or None when registration is off.
    """
    experiment_id = client.get_run(run_id).info.experiment_id
    set_note_once(client, experiment_id, EXPERIMENT_NOTE)
    subject = f"{what}, trained on **{data_name}** ({data_summary})"
    note = f"{subject}: {headline(table)}."
    if decision is None:
        registry = "Not registered (registry.enabled=false)."
    elif not decision.registered:
        registry = f"Not registered: {'; '.join(decision.reasons)}."
    else:
        registry = (f"Registered as {version_link(decision.name, decision.version)}: "
                    f"**{decision.alias}** ({'; '.join(decision.reasons)}).")
    client.set_tag(run_id, MLFLOW_RUN_NOTE, f"{note}\n\n{registry}")
    if decision is not None and decision.registered:
        describe_registered(client, decision, subject, run_link(experiment_id, run_id, "this run"),
                            table)


def describe_evaluation(client: MlflowClient, run_id: str, name: str | None, version: str | None,
                        what: str, table: Mapping[str, Mapping[str, float]]) -> None:
    """An evaluation run's description, linked to the model version it scored, and a line
    linking back to it in that version's description.

    Args:
        name, version: the registered model version evaluated (None: a run's or a folder's model).
        what: the backtest in words ("co2: 4 windows, horizon 52").
        table: method -> backtest metrics.
    """
    run = client.get_run(run_id)
    model = version_link(name, version) if version else "the model"
    client.set_tag(run_id, MLFLOW_RUN_NOTE, f"Backtest of {model} on {what}: {headline(table)}.")
    if version:
        link = run_link(run.info.experiment_id, run_id, run.info.run_name or run_id)
        add_evaluation(client, name, version, f"{link}: {what}, {headline(table)}")


def source_name(path: str | None, source: str) -> str:
    """The dataset's name in the UI: the file name for user files, else the source."""
    return Path(path).name if source == "csv" and path else source
