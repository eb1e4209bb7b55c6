"""Writes the example requests of the README from the default training data.

    python examples/make_requests.py     # -> examples/forecast.json, examples/forecast_batch.json

The history is what the default model (``conf/train.yaml``: co2, input_size 104, weekly) reads:
the last 104 weeks of statsmodels' Mauna Loa CO2, its missing weeks interpolated as training
interpolates them (``conf/data/co2.yaml`` fill). The batch adds the 104 weeks a year earlier.
"""

from __future__ import annotations

import json
from pathlib import Path

from forecaster.data import validate_frame
from forecaster.datasets import load_co2

HERE = Path(__file__).resolve().parent
INPUT_SIZE = 104  # conf/train.yaml input_size
WEEKS_PER_YEAR = 52


def requests() -> dict[str, dict]:
    """The request bodies, by file name."""
    clean, _, _ = validate_frame(load_co2(), min_length=INPUT_SIZE, fill="interpolate")

    def series(end: int) -> dict:
        rows = clean.iloc[len(clean) - end - INPUT_SIZE:len(clean) - end]
        return {"values": [round(float(v), 4) for v in rows["y"]],
                "last_timestamp": rows["ds"].iloc[-1].strftime("%Y-%m-%d")}

    batch = [{"id": "co2", **series(0)}, {"id": "co2-year-before", **series(WEEKS_PER_YEAR)}]
    return {"forecast.json": series(0), "forecast_batch.json": {"series": batch}}


def main() -> None:
    for name, body in requests().items():
        (HERE / name).write_text(json.dumps(body) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
