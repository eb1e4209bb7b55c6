"""Plain rolling origins: any data, the metrics of :mod:`forecaster.evaluation.metrics` only."""

from __future__ import annotations

from forecaster.evaluation.protocols.base import Protocol, register


@register
class Rolling(Protocol):
    """4 origins one horizon apart at the end of every series (``n_windows``/``step`` override)."""

    name = "rolling"
