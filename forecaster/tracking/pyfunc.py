"""The MLflow pyfunc model: ``Forecaster`` behind MLflow's ``PythonModel`` interface.

It is logged as *code* (MLflow's models-from-code, ``python_model=`` this file's path), so the
logged model holds this source file and the forecaster's weight/JSON files, and no pickle.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from forecaster.models import Forecaster

ARTIFACT_KEY = "forecaster"


class ForecasterPyfunc(PythonModel):
    """``predict(long history frame, params={"horizon": h}) -> long forecast frame``."""

    def load_context(self, context) -> None:
        self.forecaster = Forecaster.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        horizon = (params or {}).get("horizon")
        return self.forecaster.predict(model_input, horizon=int(horizon) if horizon else None)


mlflow.models.set_model(ForecasterPyfunc())
