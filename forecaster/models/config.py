"""What the model is, as a config builds it: ``conf/model/rnn.yaml`` names :class:`ModelConfig`
as its ``_target_`` and ``hydra.utils.instantiate`` builds it, checking every value here (the
one place the model's rules live, in the project's words: key, value, what is needed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forecaster.errors import ConfigError, check, positive_int
from forecaster.models.losses import LOSSES
from forecaster.nn.cell import ACTIVATIONS
from forecaster.nn.network import BASES, LEVELS, SCALES

SELECT = ("greedy", "all")


def _levels(values) -> bool:
    return all(isinstance(v, float) and 0 < v < 1 for v in values)


@dataclass
class EnsembleConfig:
    """Members per input length and ``linear`` variant, and how validation keeps them.

    Attributes:
        seeds: members per input length and variant.
        input_sizes: window lengths of the members (``None``: the run's ``input_size``).
        select: ``greedy`` (the median of the members chosen on validation) or ``all``.
    """

    seeds: int = 2
    input_sizes: list[int] | None = None
    select: str = "greedy"

    def __post_init__(self):
        check("model.ensemble.seeds", self.seeds, positive_int(self.seeds), "a positive integer")
        check("model.ensemble.input_sizes", self.input_sizes, self.input_sizes is None or (
            bool(self.input_sizes) and all(positive_int(v) for v in self.input_sizes)),
            "null or a list of positive integers")
        check("model.ensemble.select", self.select, self.select in SELECT, "greedy or all")


@dataclass
class ModelConfig:
    """The forecasting network and its ensemble (``conf/model/rnn.yaml`` documents each key)."""

    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    activation: str = "tanh"
    loss: str = "mae"
    loss_scale: str | list[str] = "std"
    quantiles: list[float] = field(default_factory=list)
    seasons: list[int] | None = None
    base: str = "auto"
    level: str = "auto"
    lags: bool = True
    rnn_steps: int | None = None
    segment: int | str = "auto"
    log: bool = False
    nonnegative: bool = True
    linear: bool | str | list = field(default_factory=lambda: [True, False])
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    intervals: list[float] = field(default_factory=lambda: [0.8, 0.95])

    def __post_init__(self):
        if isinstance(self.ensemble, dict):
            self.ensemble = EnsembleConfig(**self.ensemble)
        check("model.hidden_size", self.hidden_size, positive_int(self.hidden_size),
              "a positive integer")
        check("model.num_layers", self.num_layers, positive_int(self.num_layers),
              "a positive integer")
        check("model.dropout", self.dropout, isinstance(self.dropout, (int, float))
              and not isinstance(self.dropout, bool) and 0 <= self.dropout < 1, "a number in [0, 1)")
        check("model.activation", self.activation, self.activation in ACTIVATIONS,
              f"one of {list(ACTIVATIONS)}")
        check("model.loss", self.loss, self.loss in LOSSES, f"one of {list(LOSSES)}")
        check("model.loss_scale", self.loss_scale, all(k in SCALES for k in self.loss_scales),
              f"one of {list(SCALES)}, or a list of them (one set of members each)")
        check("model.quantiles", self.quantiles, _levels(self.quantiles),
              "a list of numbers in (0, 1)")
        if self.loss == "pinball" and not self.quantiles:
            raise ConfigError("model.quantiles is empty but model.loss=pinball needs them, "
                              "e.g. model.quantiles=[0.1,0.5,0.9]")
        check("model.intervals", self.intervals, _levels(self.intervals),
              "a list of levels in (0, 1), e.g. [0.8, 0.95]")
        check("model.seasons", self.seasons, self.seasons is None
              or all(positive_int(v) for v in self.seasons), "null or a list of positive integers")
        check("model.base", self.base, self.base in ("auto", *BASES), f"auto or one of {list(BASES)}")
        check("model.level", self.level, self.level in ("auto", *LEVELS),
              f"auto or one of {list(LEVELS)}")
        check("model.rnn_steps", self.rnn_steps, self.rnn_steps is None
              or positive_int(self.rnn_steps), "null or a positive integer")
        check("model.segment", self.segment, self.segment in ("auto", "season", 0)
              or positive_int(self.segment),
              "auto, season, 0 (a step per step) or a positive integer")
        check("model.nonnegative", self.nonnegative, isinstance(self.nonnegative, bool),
              "true or false")
        check("model.linear", self.linear, all(v in (True, False, "only") for v in self.variants),
              "true, false or only, or a list of them")

    @property
    def loss_scales(self) -> list[str]:
        """One set of members per loss scale."""
        return [self.loss_scale] if isinstance(self.loss_scale, str) else list(self.loss_scale)

    @property
    def variants(self) -> list:
        """The ``linear`` variants trained (``[True, False]``: with and without the path)."""
        return list(self.linear) if isinstance(self.linear, (list, tuple)) else [self.linear]

    def resolved_segment(self, season_length: int) -> int:
        """Steps the cell reads at once: ``auto`` and ``season`` are the primary season (0
        without one); ``auto`` applies it only where it shortens the unroll (``member_configs``)."""
        if self.segment in ("auto", "season"):
            return season_length if season_length > 1 else 0
        return int(self.segment)

    def resolved_base(self, seasonal: bool) -> str:
        """``base``, with ``auto`` = seasonal naive when there is a season, else the last value."""
        return ("seasonal" if seasonal else "last") if self.base == "auto" else self.base

    def resolved_level(self, seasonal: bool) -> str:
        """``level``, with ``auto`` = the mean of the last season, else the last value."""
        return ("season" if seasonal else "last") if self.level == "auto" else self.level
