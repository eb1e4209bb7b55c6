"""Training and prediction: the LightningModule, losses, ensemble choices, conformal intervals
and the predictor.

The predictor side (``Forecaster``, ``quantile_column``) imports torch, numpy and pandas only:
serving and the MLflow pyfunc model load it without Lightning. ``ForecastModule`` (Lightning)
is imported on first use.
"""

from forecaster.models.losses import ForecastLoss, pinball_loss
from forecaster.models.predictor import Forecaster, NonFiniteForecastError, quantile_column

__all__ = [
    "ForecastLoss",
    "ForecastModule",
    "Forecaster",
    "NonFiniteForecastError",
    "pinball_loss",
    "quantile_column",
]


def __getattr__(name: str):
    if name == "ForecastModule":  # Lightning: only training needs it
        from forecaster.models.module import ForecastModule

        return ForecastModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
