"""Benchmark protocols, found by name: how many windows a benchmark scores, which baselines it
needs and which columns it adds to the table.

    rolling   any data: 4 origins one horizon apart (the default when no benchmark applies)
    m4        M4 Hourly: the one test window; sMAPE, MASE and OWA against Naive2
    etth1     ETTh1: every test window (stride 1); MSE and MAE of standardised values

A new benchmark is one new module in this package that defines a :class:`Protocol` subclass
decorated with :func:`register`; :func:`get` and :func:`for_source` find it.
"""

from __future__ import annotations

import importlib
import pkgutil

from forecaster.evaluation.protocols.base import Protocol, for_source, get, names, register

__all__ = ["Protocol", "for_source", "get", "names", "register", "split_metrics"]

for _module in pkgutil.iter_modules(__path__):  # each module registers its protocol
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def split_metrics(source: str, forecaster, data, fc=None, split: str = "test") -> dict[str, float]:
    """The benchmark protocol's scores of a training run's ``split`` windows (``data``: the
    ``Datasets`` it trained on), for the data sources that have one: ``test/owa`` and
    ``test_naive2/*`` for M4 Hourly, ``test/mse_scaled``, ``test/mae_scaled`` and
    ``test_naive/*`` for ETTh1; ``{}`` otherwise.

    Args:
        fc: the model's forecasts of those windows when the caller has them already.
        split: ``"test"``, or ``"val"`` for the validation windows (keys ``val/...``), what
            choices are made on.
    """
    from forecaster.evaluation.scoring import forecast_windows, score

    protocol = for_source(source)
    windows = getattr(data, split)
    if not protocol.summary or not len(windows):
        return {}
    fc = fc if fc is not None else forecast_windows(forecaster, windows)
    baselines = ["naive", "seasonal_naive", *protocol.baselines]
    table = score(forecaster, data.panel, fc, forecaster.season_length, baselines, protocol,
                  quantiles=False).table
    return protocol.flat(table, split)

