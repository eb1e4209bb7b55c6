"""Train, test, log and register: ``python -m pipelines.train [overrides]`` (or ``forecaster-train``).

    python -m pipelines.train model.hidden_size=128 trainer.max_epochs=20 horizon=24
    python -m pipelines.train data=csv data.path=my.csv
    python -m pipelines.train -m model.hidden_size=32,64,128 launcher=joblib
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipelines import _precheck

# an absolute path: the console script has no calling file that Hydra could resolve "../conf" from
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    with _precheck.checked():
        _precheck.check(cfg)  # in the first second, before lightning and mlflow load
        from forecaster.training import train

        result = train(cfg)
    if result.run_id:  # rank zero: the process that tested, logged and registered
        from forecaster.console import summary
        from forecaster.tracking.store import resolve_tracking_uri

        print(summary(result.metrics, result.run_id, result.decision,
                      resolve_tracking_uri(cfg.logger.get("tracking_uri"))), flush=True)
    # the value a hyperparameter sweeper minimises: validation, never test
    return result.metrics.get("val/loss_best")


if __name__ == "__main__":
    main()
