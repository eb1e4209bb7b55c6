"""Backtest a model: ``python -m pipelines.evaluate [overrides]`` (composes ``conf/evaluate.yaml``).

    python -m pipelines.evaluate model_uri=models:/forecaster-rnn@champion n_windows=8 step=24
    python -m pipelines.evaluate model_uri=runs:/RUN_ID/model data.source=m4_hourly data.fill=null
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipelines import _precheck

# an absolute path: the console script has no calling file that Hydra could resolve "../conf" from
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    with _precheck.checked():
        _precheck.check(cfg)  # in the first second, before mlflow and torch load
        from forecaster.console import quiet_third_party
        from forecaster.evaluation.runner import evaluate

        quiet_third_party()
        result = evaluate(cfg)
    return float(result.table.loc["model", "mase"])


if __name__ == "__main__":
    main()
