"""The README's front door: its example requests are the CO2 training data, and its curl
commands, run as written, are answered 200 by a real server with a model of the default shape
(input_size 104, horizon 52, weekly '7D')."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess

import httpx
import pandas as pd
import pytest

from forecaster.data import FeatureSpec
from forecaster.tracking.loading import ModelInfo
from tests.conftest import ROOT
from tests.serving.conftest import folder_server, toy_forecaster

EXAMPLES = ROOT / "examples"


def readme_curls() -> list[str]:
    """The curl commands of the README's Serving section (``\\`` continuations joined)."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    section = text[text.index("## Serving"):]
    section = section[:section.index("\n## ", 1)]
    return [re.sub(r"\s+#.*$", "", line.strip()) for line in section.splitlines()
            if line.strip().startswith("curl ")]


def test_example_files_are_the_co2_training_history():
    spec = importlib.util.spec_from_file_location("make_requests", EXAMPLES / "make_requests.py")
    make_requests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_requests)
    for name, body in make_requests.requests().items():
        assert json.loads((EXAMPLES / name).read_text()) == body, name
    one = json.loads((EXAMPLES / "forecast.json").read_text())
    assert len(one["values"]) == 104 and one["last_timestamp"] == "2001-12-29"
    assert pd.Timestamp(one["last_timestamp"]).day_name() == "Saturday"  # pandas says W-SAT


@pytest.fixture(scope="module")
def co2_server(tmp_path_factory):
    """A model of the default shape whose stored input example is examples/forecast.json."""
    tmp = tmp_path_factory.mktemp("co2-model")
    one = json.loads((EXAMPLES / "forecast.json").read_text())
    ds = pd.date_range(end=one["last_timestamp"], periods=len(one["values"]), freq="7D")
    example = pd.DataFrame({"unique_id": "co2", "ds": ds, "y": one["values"]})
    with folder_server(tmp, toy_forecaster(FeatureSpec(104, 52, freq="7D"), known=["co2"]),
                       ModelInfo(uri="test", name="forecaster-rnn", version="1"), example) as srv:
        yield srv


def test_readme_curl_commands_run_as_written(co2_server):
    curls = readme_curls()
    assert any("@examples/forecast.json" in c for c in curls)
    assert any("@examples/forecast_batch.json" in c for c in curls)
    for command in curls:
        command = command.replace("localhost:3000", f"127.0.0.1:{co2_server.port}")
        result = subprocess.run(["bash", "-c", command + " -w '\\n%{http_code}'"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (command, result.stderr)
        body, status = result.stdout.rsplit("\n", 1)
        assert status == "200", (command, body[-2000:])
        if "/forecast" in command:
            answer = json.loads(body)
            forecasts = answer.get("forecasts") or [answer]
            assert all(len(f["forecast"]) == 52 for f in forecasts), body[:500]
            assert all(f["timestamps"][0] == "2002-01-05T00:00:00" for f in forecasts[:1])


def test_weekly_saturdays_and_aware_stamps_over_http(co2_server):
    """The model is '7D' on Saturdays (which pandas calls 'W-SAT'): the last Saturday is
    answered 200, so is the same time with a UTC offset (its forecast stamps in UTC), and a date
    that does not exist is named."""
    one = json.loads((EXAMPLES / "forecast.json").read_text())
    with httpx.Client(base_url=co2_server.url, timeout=30) as c:
        r = c.post("/forecast", json={"values": one["values"], "last_timestamp": "2001-12-29"})
        assert r.status_code == 200, r.text
        assert r.json()["timestamps"][:2] == ["2002-01-05T00:00:00", "2002-01-12T00:00:00"]
        r = c.post("/forecast", json={"values": one["values"], "horizon": 2,
                                      "last_timestamp": "2001-12-29T00:00:00+02:00"})
        assert r.status_code == 200, r.text
        assert r.json()["timestamps"] == ["2002-01-04T22:00:00+00:00", "2002-01-11T22:00:00+00:00"]
        r = c.post("/forecast", json={"values": one["values"], "last_timestamp": "2001-02-29"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["last_timestamp"], r.text
        assert "that exists" in r.text
        r = c.post("/forecast", json={"values": one["values"],
                                      "timestamps": ["2001-12-22", "2001-12-29"]})
        assert r.status_code == 422 and "send last_timestamp" in r.text, r.text
