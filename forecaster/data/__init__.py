"""Data layer: long frames -> validated panels -> windows, splits and scalers.

See ``docs/architecture.md`` for the batch contract the loaders yield.
"""

from forecaster.data.features import CALENDAR_FEATURES, FeatureSpec, calendar_features, future_timestamps
from forecaster.data.frames import DataValidationError, load_frame, validate_frame
from forecaster.data.inference import inference_batch
from forecaster.data.scalers import SCALER_KINDS, SeriesScaler
from forecaster.data.splits import Datasets, build_datasets
from forecaster.data.windows import Panel, WindowDataset, window_loader

__all__ = [
    "CALENDAR_FEATURES",
    "SCALER_KINDS",
    "DataValidationError",
    "Datasets",
    "FeatureSpec",
    "Panel",
    "SeriesScaler",
    "WindowDataset",
    "build_datasets",
    "calendar_features",
    "future_timestamps",
    "inference_batch",
    "load_frame",
    "validate_frame",
    "window_loader",
]
