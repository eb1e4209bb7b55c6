"""The MLflow pyfunc model: ``Forecaster`` behind MLflow's ``PythonModel`` interface.

It is logged as *code* (MLflow's models-from-code, ``python_model=`` this file's path) with
the ``forecaster`` package as its ``code_paths``: the logged model holds this source file, the
package and the forecaster's safetensors/JSON files, and no pickle, so it loads where the
project is not installed. Loading imports torch, numpy, pandas and safetensors (its
``requirements``), never Lightning or Hydra.
"""

from __future__ import annotations

import importlib.metadata

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from forecaster.models.predictor import Forecaster

ARTIFACT_KEY = "forecaster"
REQUIREMENTS = ("torch", "numpy", "pandas", "safetensors", "mlflow")  # what loading imports


def requirements() -> list[str]:
    """The logged model's pip requirements: the packages loading and predicting import, at
    least the versions it was trained with (torch without its local build tag, so that a CPU
    or CUDA build both satisfy it). Never ``forecaster``: the project ships as code, and that
    name on PyPI is another package."""
    return [f"{name}>={importlib.metadata.version(name).split('+')[0]}" for name in REQUIREMENTS]


class ForecasterPyfunc(PythonModel):
    """``predict(long history frame, params={"horizon": h}) -> long forecast frame``."""

    def load_context(self, context) -> None:
        self.forecaster = Forecaster.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        horizon = (params or {}).get("horizon")
        return self.forecaster.predict(model_input, horizon=int(horizon) if horizon else None)


mlflow.models.set_model(ForecasterPyfunc())
