"""What a benchmark protocol is, and the registry that finds one by name or by data source."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

_PROTOCOLS: dict[str, Protocol] = {}


class Protocol:
    """A way of scoring forecasts that a benchmark fixes.

    Attributes:
        name: what ``protocol=`` names it by.
        sources: the data sources (``data.source``) it is chosen for under ``protocol=auto``.
        baselines: baselines the protocol's columns need beside the configured ones.
        summary: the table columns a training run logs for its split (``test/<column>``);
            empty: a training run logs nothing of this protocol.
    """

    name: str = ""
    sources: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()
    summary: tuple[str, ...] = ()

    def windows(self, horizon: int) -> tuple[int, int]:
        """``(n_windows, step)`` of a backtest when none is configured."""
        return 4, horizon

    def columns(self, table: pd.DataFrame, actual: np.ndarray,
                forecasts: Mapping[str, np.ndarray], panel) -> pd.DataFrame:
        """``table`` (one row per method) with the protocol's columns added."""
        return table

    def flat(self, table: pd.DataFrame, split: str) -> dict[str, float]:
        """``{"test/owa": ..., "test_naive2/smape": ...}``: the ``summary`` columns of the model
        (``<split>/``) and of each baseline (``<split>_<method>/``)."""
        out = {}
        for method, row in table.iterrows():
            prefix = split if method == "model" else f"{split}_{method}"
            out.update({f"{prefix}/{k}": float(row[k]) for k in self.keys(method)
                        if k in row and pd.notna(row[k])})
        return out

    def keys(self, method: str) -> tuple[str, ...]:
        """The ``summary`` columns logged for ``method``."""
        return self.summary


def register(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: make the protocol findable by :func:`get` and :func:`for_source`."""
    _PROTOCOLS[cls.name] = cls()
    return cls


def names() -> list[str]:
    return sorted(_PROTOCOLS)


def get(name: str | None) -> Protocol:
    """The protocol called ``name`` (``None`` or ``"none"``: plain rolling origins)."""
    key = "rolling" if name in (None, "none") else str(name)
    if key not in _PROTOCOLS:
        raise ValueError(f"protocol must be auto, none or one of {names()}, got {name!r}")
    return _PROTOCOLS[key]


def for_source(source: str | None) -> Protocol:
    """The protocol of a data source (``m4_hourly`` -> m4), else plain rolling origins."""
    return next((p for p in _PROTOCOLS.values() if source in p.sources), get("rolling"))
