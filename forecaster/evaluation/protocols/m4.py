"""M4 Hourly: the competition's scoring (Makridakis et al., 2020)."""

from __future__ import annotations

import pandas as pd

from forecaster.evaluation.protocols.base import Protocol, register


def owa(table: pd.DataFrame, reference: str = "naive2") -> pd.Series:
    """Overall weighted average of each method: the mean of sMAPE / sMAPE(reference) and
    MASE / MASE(reference), from the aggregate sMAPE and MASE (sMAPE and MASE averaged over
    series, as the competition scored them)."""
    ref = table.loc[reference]
    return 0.5 * (table["smape"] / ref["smape"] + table["mase"] / ref["mase"])


@register
class M4(Protocol):
    """The one test window of every series (the last 48 hours); sMAPE, MASE and OWA against
    Naive2 (seasonal naive on seasonally adjusted values, where the series is seasonal)."""

    name = "m4"
    sources = ("m4_hourly",)
    baselines = ("naive2",)
    summary = ("owa", "smape", "mase")

    def windows(self, horizon: int) -> tuple[int, int]:
        return 1, horizon

    def columns(self, table, actual, forecasts, panel):
        if "naive2" in table.index:
            table = table.assign(owa=owa(table))
        return table

    def keys(self, method: str) -> tuple[str, ...]:
        # the model and Naive2 (the reference) in full; other baselines by their OWA
        return self.summary if method in ("model", "naive2") else ("owa",)
