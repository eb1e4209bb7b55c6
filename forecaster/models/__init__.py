"""Training and prediction: the LightningModule, losses, metrics, baselines and the predictor."""

from forecaster.models.losses import ForecastLoss, pinball_loss
from forecaster.models.module import ForecastModule
from forecaster.models.predictor import Forecaster, NonFiniteForecastError, quantile_column

__all__ = [
    "ForecastLoss",
    "ForecastModule",
    "Forecaster",
    "NonFiniteForecastError",
    "pinball_loss",
    "quantile_column",
]
