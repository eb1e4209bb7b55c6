"""A Hydra callback that groups a multirun sweep under one MLflow parent run.

In the launching process, before any job starts, it sets up the store once (MLflow's sqlite
schema set-up races when parallel jobs create one database together), opens the parent run and
hands its id to the jobs through ``FORECASTER_PARENT_RUN_ID`` (jobs of the joblib launcher
inherit the environment). When the sweep ends it records the best child by validation loss
(never by a test metric) and closes the parent.
"""

from __future__ import annotations

import logging
import os

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)
PARENT_ENV = "FORECASTER_PARENT_RUN_ID"
SELECT_METRIC = "val/loss_best"


class SweepParentRun(Callback):
    def __init__(self) -> None:
        self.run_id: str | None = None
        self.uri: str | None = None

    # mlflow is imported in the hooks: Hydra builds this callback for every run, single runs
    # too, and the entry points check the command line before the heavy stack loads.

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from mlflow.tracking import MlflowClient

        from forecaster.tracking import store

        self.uri = store.resolve_tracking_uri(config.logger.get("tracking_uri"))
        experiment_id = store.prepare_store(self.uri, config.logger.experiment_name)
        client = MlflowClient(self.uri)
        overrides = " ".join(config.hydra.overrides.task)
        run = client.create_run(experiment_id, run_name=f"sweep {overrides}"[:250],
                                tags={"forecaster.sweep": "parent", **store.process_tags()})
        client.log_param(run.info.run_id, "sweep.overrides", overrides[:6000])
        self.run_id = run.info.run_id
        os.environ[PARENT_ENV] = self.run_id
        # jobs get the resolved absolute URI, so relative sqlite paths agree across processes
        os.environ["MLFLOW_TRACKING_URI"] = self.uri
        log.info("sweep parent run %s in %s", self.run_id, self.uri)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.run_id is None:
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        parent = client.get_run(self.run_id)
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{self.run_id}'")
        scored = [r for r in children if SELECT_METRIC in r.data.metrics]
        client.log_metric(self.run_id, "sweep/children", len(children))
        client.log_metric(self.run_id, "sweep/finished",
                          sum(r.info.status == "FINISHED" for r in children))
        if scored:
            best = min(scored, key=lambda r: r.data.metrics[SELECT_METRIC])
            client.set_tag(self.run_id, "sweep.best_run_id", best.info.run_id)
            client.log_metric(self.run_id, f"best/{SELECT_METRIC}", best.data.metrics[SELECT_METRIC])
            for key in ("test/mase", "test/smape"):
                if key in best.data.metrics:
                    client.log_metric(self.run_id, f"best/{key}", best.data.metrics[key])
            log.info("sweep best child %s with %s=%.5f", best.info.run_id, SELECT_METRIC,
                     best.data.metrics[SELECT_METRIC])
        status = "FINISHED" if children and len(scored) == len(children) else "FAILED"
        client.set_terminated(self.run_id, status)
        os.environ.pop(PARENT_ENV, None)
