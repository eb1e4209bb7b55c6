"""The service over HTTP: happy paths, every bad input (and still ready after it), equality with
the pyfunc model, metadata, limits, graceful shutdown, and the start-up failure message."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from forecaster.data import FeatureSpec
from forecaster.serving.source import export
from forecaster.tracking.loading import ModelInfo
from tests.conftest import ROOT, small_frame
from tests.serving.conftest import MODEL_URI, Server, folder_server, toy_forecaster


def history(meta, n=None, freq="h"):
    n = n or meta["input_size"] + 10
    frame = small_frame(n_series=1, length=n)
    ts = pd.date_range("2024-01-01", periods=n, freq=freq)
    return frame["y"].tolist(), [t.isoformat() for t in ts]


def assert_ready(client):
    assert client.get("/readyz").status_code == 200


# ------------------------------------------------------------------------------ happy paths
def test_forecast(client, meta):
    values, ts = history(meta)
    r = client.post("/forecast", json={"values": values, "last_timestamp": ts[-1]})
    assert r.status_code == 200, r.text
    body = r.json()
    H = meta["horizon"]
    assert len(body["forecast"]) == H and all(math.isfinite(v) for v in body["forecast"])
    expected = pd.date_range(pd.Timestamp(ts[-1]), periods=H + 1, freq="h")[1:]
    assert body["timestamps"] == [t.isoformat() for t in expected]
    assert set(body["model"]) == {"name", "version", "alias", "run_id"}
    assert body["model"]["name"] == "forecaster-rnn" and body["model"]["alias"] == "champion"
    if meta["quantiles"]:
        assert set(body["intervals"]) == {f"{q:g}" for q in meta["quantiles"]}
        lo, hi = body["intervals"][f"{meta['quantiles'][0]:g}"], body["intervals"][f"{meta['quantiles'][-1]:g}"]
        assert all(a <= b for a, b in zip(lo, hi))
    assert r.headers["x-request-id"]


def test_forecast_without_last_timestamp_and_shorter_horizon(client, meta):
    values, ts = history(meta)
    r = client.post("/forecast", json={"values": values, "horizon": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["forecast"]) == 2 and "timestamps" not in r.json()


def test_forecast_batch(client, meta):
    values, ts = history(meta)
    series = [{"id": f"s{k}", "values": [v + k for v in values], "last_timestamp": ts[-1]}
              for k in range(5)]
    r = client.post("/forecast_batch", json={"series": series, "horizon": 3})
    assert r.status_code == 200, r.text
    out = r.json()["forecasts"]
    assert [f["id"] for f in out] == [s["id"] for s in series]
    assert all(len(f["forecast"]) == 3 and len(f["timestamps"]) == 3 for f in out)
    # batched forecasts are those of the series sent alone
    alone = client.post("/forecast", json={"values": series[2]["values"], "horizon": 3}).json()
    np.testing.assert_allclose(out[2]["forecast"], alone["forecast"], rtol=1e-5, atol=1e-5)


def test_metadata(meta):
    assert meta["name"] == "forecaster-rnn" and meta["alias"] == "champion"
    assert meta["version"] and meta["run_id"]
    assert meta["input_size"] == 24 and meta["horizon"] == 6
    assert meta["frequency"]
    assert {"model", "naive", "seasonal_naive"} <= set(meta["metrics"])
    assert "mase" in meta["metrics"]["model"] and "mase" in meta["metrics"]["seasonal_naive"]
    ensemble = meta["ensemble"]  # what the ensemble is: kept members, seasons, intervals
    assert ensemble["members"] and {m["kind"] for m in ensemble["members"]} <= {
        "rnn + linear", "rnn", "linear only", "base alone"}
    assert ensemble["seasons"] == [24] and ensemble["intervals"]["levels"] == [0.8, 0.95]


def test_probes_metrics_and_openapi(client):
    assert client.get("/livez").status_code == 200
    assert_ready(client)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "bentoml_service_request" in metrics.text
    schema = client.get("/docs.json").json()
    req = json.dumps(schema)
    for rule in ('"minLength"', '"minimum"', '"additionalProperties": false', '"maxItems"'):
        assert rule in req, rule
    assert "/forecast" in schema["paths"] and "/forecast_batch" in schema["paths"]


# ------------------------------------------------------------------------------ bad input
def _bad_cases(meta):
    values, ts = history(meta)
    n, H = len(values), meta["horizon"]
    j = lambda body: json.dumps(body).encode()  # noqa: E731
    cases = {
        "missing values": (j({"horizon": 2}), "values"),
        "empty values": (j({"values": []}), "values"),
        "too few values": (j({"values": values[:5]}), "values"),
        "NaN literal": (b'{"values": [' + b"1.0, " * n + b"NaN]}", "values"),
        "Infinity literal": (b'{"values": [' + b"1.0, " * n + b"Infinity]}", "values"),
        "NaN string": (j({"values": [*values, "NaN"]}), "values"),
        "1e309": (b'{"values": [' + b"1.0, " * n + b"1e309]}", "values"),
        "huge spread": (j({"values": [3.4e38, -3.4e38] * n}), "values"),
        "1e39 (not float32)": (b'{"values": [' + b"1.0, " * n + b"1e39]}", "values"),
        "-3.5e38 (not float32)": (b'{"values": [' + b"1.0, " * n + b"-3.5e38]}", "values"),
        "2e30 (beyond 1e30)": (b'{"values": [' + b"1.0, " * n + b"2e30]}", "values"),
        "string number": (j({"values": [*values[:-1], "1.5"]}), "values"),
        "boolean": (j({"values": [*values[:-1], True]}), "values"),
        "last_timestamp unparsable": (j({"values": values, "last_timestamp": "yesterday"}),
                                      "last_timestamp"),
        "last_timestamp no such day": (j({"values": values, "last_timestamp": "2023-02-29"}),
                                       "last_timestamp"),
        "last_timestamp a list": (j({"values": values, "last_timestamp": ts}), "last_timestamp"),
        "timestamps (the old field)": (j({"values": values, "timestamps": ts}), "timestamps"),
        "horizon zero": (j({"values": values, "horizon": 0}), "horizon"),
        "horizon negative": (j({"values": values, "horizon": -1}), "horizon"),
        "horizon too large": (j({"values": values, "horizon": H + 1}), "horizon"),
        "horizon 10**15, with a time": (j({"values": values, "horizon": 10**15,
                                            "last_timestamp": ts[-1]}), "horizon"),
        "horizon string": (j({"values": values, "horizon": "3"}), "horizon"),
        "unknown covariate": (j({"values": values, "covariates": {"temp": [1.0] * (n + H)}}),
                              "covariates"),
        "unknown field": (j({"values": values, "extra": 1}), "extra"),
        "malformed JSON": (b'{"values": [1, 2', None),
        "empty body": (b"", "values"),
    }
    return cases


@pytest.mark.parametrize("case", list(_bad_cases({"input_size": 24, "horizon": 6})))
def test_bad_input_is_a_4xx_naming_the_field(client, meta, case):
    """400 when the body is not JSON, else 422; each error names the field and the rule in
    the project's words (no pydantic class names or links)."""
    body, field = _bad_cases(meta)[case]
    r = client.post("/forecast", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == (400 if case == "malformed JSON" else 422), (case, r.text)
    err = r.json()
    assert isinstance(err, dict) and err["detail"], err
    if field:
        assert any(field in map(str, d["loc"]) for d in err["detail"]), err
        assert all(field in d["msg"] for d in err["detail"]), err
    assert all(d["msg"] for d in err["detail"])
    for internal in ("IODescriptor", "pydantic", "ForecastRequest", "Input should"):
        assert internal not in r.text, (case, r.text)
    if case == "too few values":  # says how many are needed
        assert f"at least the model's input_size {meta['input_size']}" in err["detail"][0]["msg"]
    if "(not float32)" in case or "(beyond 1e30)" in case:  # names the index of the value
        n = len(history(meta)[0])
        assert err["detail"][0]["loc"] == ["values", n] and "within -1e30 to 1e30" in r.text, r.text
    assert_ready(client)


def test_client_errors_log_one_line_and_no_traceback(server, client, meta):
    values, _ = history(meta)
    bodies = [b'{"values": [1, 2', b'{"values": ["1"]}', json.dumps({"values": values[:3]})]
    start = len(server.output())  # this test's lines only, whatever ran on the server before
    for k, body in enumerate(bodies):
        r = client.post("/forecast", content=body, headers={
            "content-type": "application/json", "x-request-id": f"client-error-{k}"})
        assert 400 <= r.status_code < 500
    out = _poll_log(server, "client-error-2")[start:]
    for k in range(len(bodies)):
        lines = [line for line in out.splitlines() if f'"request_id": "client-error-{k}"' in line]
        assert len(lines) == 1 and "[INFO]" in lines[0], lines
    assert "Traceback" not in out and "[ERROR]" not in out, out[-3000:]


def _in_progress(server, endpoint: str) -> bool:
    """Whether the server's ``/metrics`` counts a request to ``endpoint`` in progress (False
    while it is too busy to answer within 5 s: the caller polls again)."""
    try:
        text = httpx.get(server.url + "/metrics", timeout=5).text
    except httpx.TimeoutException:
        return False
    return any(float(line.rsplit(" ", 1)[1]) > 0 for line in text.splitlines()
               if line.startswith("bentoml_service_request_in_progress{")
               and f'endpoint="{endpoint}"' in line)


def _poll_log(server, needle: str, timeout: float = 30, count: int = 1) -> str:
    """The server's log once it holds ``needle`` ``count`` times (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (out := server.output()).count(needle) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return out


def test_get_metadata_is_the_post(client, meta):
    r = client.get("/metadata")
    assert r.status_code == 200 and r.json() == meta


def test_docs_json_states_the_model_rules_and_its_examples_run(client, meta):
    """/docs.json carries the loaded model's rules, and each endpoint's example (the model's
    stored input example) is answered 200, as Swagger's "Try it out" sends it."""
    doc = client.get("/docs.json").json()
    assert doc["info"]["title"] == "forecaster"
    assert doc["info"]["version"].endswith(f"+model.{meta['version']}")
    fc = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]
    props = fc["schema"]["properties"]
    assert props["values"]["minItems"] == meta["input_size"]
    assert props["horizon"]["maximum"] == meta["horizon"]
    assert f"frequency: {meta['frequency']!r}" in props["last_timestamp"]["description"]
    series = doc["components"]["schemas"]["SeriesInput"]["properties"]
    assert series["values"]["minItems"] == meta["input_size"]
    responses = doc["paths"]["/forecast"]["post"]["responses"]
    assert {"400", "413", "415", "422", "503"} <= set(responses)
    assert "get" in doc["paths"]["/metadata"]
    assert all(doc["paths"][p]["post"]["requestBody"]["required"]  # an empty body is a 422
               for p in ("/forecast", "/forecast_batch"))
    for path in ("/forecast", "/forecast_batch", "/metadata"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]
        r = client.post(path, json=body)
        assert r.status_code == 200, (path, r.text)
    assert len(fc["example"]["values"]) == meta["input_size"] and fc["example"]["last_timestamp"]


def test_batch_bad_inputs(client, meta):
    """Rules of the whole request are a 422; a series that breaks a rule gets an error object
    (id, field, rule) in its place and the others are forecast."""
    values, ts = history(meta)
    too_many = {"series": [{"id": str(k), "values": values} for k in range(51)]}
    r = client.post("/forecast_batch", json=too_many)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["series"], r.text
    r = client.post("/forecast_batch", json={"series": [{"id": "a", "values": values}],
                                             "horizon": meta["horizon"] + 1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["horizon"], r.text
    r = client.post("/forecast_batch", content=b'{"series": [', headers={
        "content-type": "application/json"})
    assert r.status_code == 400, r.text
    series = [
        {"id": "ok", "values": values, "last_timestamp": ts[-1]},
        {"id": "ok", "values": values},  # repeats an id
        {"id": "short", "values": values[:3]},
        {"id": "string", "values": [*values[:-1], "1.5"]},
        {"id": "not float32", "values": [*values[:-1], 1e39]},
        {"values": values},  # no id
        {"id": "no such day", "values": values, "last_timestamp": "2024-02-30"},
        {"id": "ok too", "values": values},
    ]
    r = client.post("/forecast_batch", json={"series": series})
    assert r.status_code == 200, r.text
    out = r.json()["forecasts"]
    assert [f["id"] for f in out] == ["ok", "ok", "short", "string", "not float32", None,
                                      "no such day", "ok too"]
    forecast = [True] + [False] * 6 + [True]
    assert [("forecast" in f, "errors" in f) for f in out] == [(f, not f) for f in forecast]
    last = len(values) - 1
    locs = [f["errors"][0]["loc"] for f in out[1:7]]
    assert locs == [["series", 1, "id"], ["series", 2, "values"], ["series", 3, "values", last],
                    ["series", 4, "values", last], ["series", 5, "id"],
                    ["series", 6, "last_timestamp"]], locs
    assert all(e["msg"] and e["type"] for f in out[1:7] for e in f["errors"])
    assert "at least the model's input_size" in out[2]["errors"][0]["msg"]
    assert "float32" in out[4]["errors"][0]["msg"]
    alone = client.post("/forecast", json={"values": values, "last_timestamp": ts[-1]}).json()
    assert out[0]["forecast"] == alone["forecast"]
    assert_ready(client)


def test_histories_at_the_value_bounds_are_forecast(client, meta):
    """Every history the schema allows is forecast: values up to 1e30 in size leave the model's
    float32 forecasts room (a history of +-3e38, all float32, was forecast as infinity)."""
    n = meta["input_size"] + 6
    extremes = {
        "alternating +-1e30": [1e30, -1e30] * (n // 2),
        "one spike": [0.0] * (n - 1) + [1e30],
        "constant -1e30": [-1e30] * n,
        "tiny": [1e-300, -5e-324] * (n // 2),
        "ramp to 1e30": [1e30 * k / n for k in range(n)],
    }
    for case, values in extremes.items():
        r = client.post("/forecast", json={"values": values})
        assert r.status_code == 200, (case, r.text)
        assert all(math.isfinite(v) for v in r.json()["forecast"]), (case, r.text)
        r = client.post("/forecast_batch", json={"series": [{"id": case, "values": values}]})
        assert r.status_code == 200 and "forecast" in r.json()["forecasts"][0], (case, r.text)


def test_content_type_and_body_size(client, meta):
    values, _ = history(meta)
    r = client.post("/forecast", content=json.dumps({"values": values}),
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["detail"][0]["loc"] == ["header", "content-type"]
    big = b'{"values": [' + b"1.0," * 300_000 + b"1.0]}"  # > the 1 MiB the fixture sets
    r = client.post("/forecast", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(300):
            yield b"1.0," * 1000

    r = client.post("/forecast", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert_ready(client)


# ------------------------------------------------------------------------------ one path
def test_served_forecast_equals_pyfunc(client, meta, store, tmp_path):
    """Same numbers to the bit: the service writes each float32 forecast as the shortest decimal
    that reads back as that float32, and the pyfunc model returns the float32 values."""
    values, ts = history(meta)
    served = client.post("/forecast", json={"values": values, "last_timestamp": ts[-1]}).json()
    frame = pd.DataFrame({"unique_id": "series", "ds": pd.to_datetime(ts), "y": values})
    frame.to_parquet(tmp_path / "history.parquet")
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({MODEL_URI!r})\n"
        f"out = model.predict(pd.read_parquet({str(tmp_path / 'history.parquet')!r}))\n"
        f"out.to_parquet({str(tmp_path / 'out.parquet')!r})\n")
    env = {k: v for k, v in store.items() if k != "tmp"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=120,
                            env={**os.environ, **env}, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    pyfunc = pd.read_parquet(tmp_path / "out.parquet")
    assert pyfunc["y_hat"].dtype == np.float32
    np.testing.assert_array_equal(np.float32(served["forecast"]), pyfunc["y_hat"].to_numpy())
    for q in meta["quantiles"]:
        col = f"y_q{round(q * 100, 4):g}"
        np.testing.assert_array_equal(np.float32(served["intervals"][f"{q:g}"]),
                                      pyfunc[col].to_numpy())


# ------------------------------------------------------------------------------ lifecycle
def test_graceful_shutdown_finishes_in_flight_request(store, tmp_path, meta):
    """SIGTERM while a 10,000-series batch is being answered: it still completes with 200."""
    env = {k: v for k, v in store.items() if k != "tmp"}
    srv = Server(env, tmp_path)
    try:
        srv.wait_ready()
        values, _ = history(meta)
        body = {"series": [{"id": str(k), "values": values} for k in range(10_000)]}  # ~6 MB
        result = {}

        def call():
            try:
                result["r"] = httpx.post(srv.url + "/forecast_batch", json=body, timeout=60)
            except httpx.HTTPError as err:
                result["err"] = err

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 60  # until the server counts the request in progress
        while not (seen := _in_progress(srv, "/forecast_batch")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen, "the batch never reached the server"
        srv.stop()
        t.join(60)
        assert "r" in result, (result, srv.output()[-3000:])
        assert result["r"].status_code == 200
        assert len(result["r"].json()["forecasts"]) == 10_000
    finally:
        srv.stop()


def test_request_log_line(server, client, meta):
    values, _ = history(meta)
    r = client.post("/forecast", json={"values": values}, headers={"x-request-id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    lines = [json.loads(line[line.index("{"):line.rindex("}") + 1])
             for line in _poll_log(server, '"request_id": "abc123"').splitlines()
             if '"request_id": "abc123"' in line]
    assert len(lines) == 1 and lines[0]["status"] == 200 and lines[0]["duration_ms"] > 0


def test_startup_fails_with_how_to_train(tmp_path):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    srv = Server(env, tmp_path)
    try:
        assert srv.proc.wait(90) != 0
    finally:
        srv.stop()
    assert "python -m pipelines.train" in srv.output()


def test_pipelines_serve_wrapper_and_export(exported, tmp_path, meta):
    # the folder alone, with no tracking store, through the wrapper and its --port, in two
    # worker processes (as the Docker image runs with FORECASTER_WORKERS=cpu_count)
    srv = Server({"FORECASTER_MODEL_DIR": str(exported), "FORECASTER_WORKERS": "2",
                  "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}, tmp_path,
                 cmd=[sys.executable, "-m", "pipelines.serve"])
    try:
        srv.wait_ready()
        values, _ = history(meta)
        for _ in range(4):  # a connection each: the workers share the listening socket
            r = httpx.post(srv.url + "/forecast", json={"values": values}, timeout=30)
            assert r.status_code == 200 and r.json()["model"]["version"] == meta["version"]
        r = httpx.post(srv.url + "/forecast_batch", timeout=30, json={
            "series": [{"id": str(k), "values": values} for k in range(50)]})
        assert r.status_code == 200 and len(r.json()["forecasts"]) == 50
        # /readyz answers once one worker is up: wait (bounded) for the other to load too
        out = _poll_log(srv, "serving forecaster-rnn", timeout=90, count=2)
        assert out.count("serving forecaster-rnn") == 2  # one model load per worker
    finally:
        assert srv.stop() == 0


def _schemathesis(url: str, max_examples: int = 30) -> subprocess.CompletedProcess:
    """A bounded schemathesis run with every check, positive_data_acceptance included: whatever
    the schema allows must be answered 2xx, whatever it forbids 4xx."""
    cli = [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; "
           "sys.exit(schemathesis())"]
    result = subprocess.run(
        [*cli, "run", url + "/docs.json", "--checks", "all", "--max-examples", str(max_examples),
         "--phases", "examples,coverage,fuzzing", "--seed", "1", "--request-timeout", "30",
         "--generation-database", "none"],  # the same cases on every machine (no replays)
        capture_output=True, text=True, timeout=420)  # a hang, not a timing target
    print(result.stdout[-1200:])  # the counts (pytest -s)
    return result


def test_covariate_rules_over_http(tmp_path):
    """A model with a known-future covariate and calendar features, served from a folder:
    last_timestamp, the covariates' history and their future are required, of lengths the
    schema states, aligned at the end with the values, and named when wrong; schemathesis finds
    nothing with every check."""
    pytest.importorskip("schemathesis")
    spec = FeatureSpec(8, 4, calendar=("hour",), futr_exog=("temp",), freq="h")
    f = toy_forecaster(spec, known=["a"])
    export(f, ModelInfo(uri="test", name="covariate-model"), tmp_path / "model")
    rng = np.random.default_rng(1)
    srv = Server({"FORECASTER_MODEL_DIR": str(tmp_path / "model"),
                  "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}, tmp_path)
    n = 12
    values = rng.normal(5, 2, n).tolist()
    ds = pd.date_range("2024-01-01", periods=n + 4, freq="h")
    temp = rng.normal(size=n + 4).tolist()
    ok = {"values": values, "last_timestamp": ds[n - 1].isoformat(),
          "covariates": {"temp": temp[:n]}, "future_covariates": {"temp": temp[n:]}}
    cases = {  # body -> loc of the error
        "no covariates": ({**ok, "covariates": None}, ["covariates", "temp"]),
        "no future": ({**ok, "future_covariates": {}}, ["future_covariates", "temp"]),
        "future too short": ({**ok, "future_covariates": {"temp": temp[n:-1]}},
                             ["future_covariates", "temp"]),
        "history below input_size": ({**ok, "covariates": {"temp": temp[n - 7:n]}},
                                     ["covariates", "temp"]),
        "unknown covariate": ({**ok, "covariates": {"temp": temp[:n], "rain": temp[:n]}},
                              ["covariates"]),
        "no last_timestamp": ({**ok, "last_timestamp": None}, ["last_timestamp"]),
    }
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.post("/forecast", json=ok)
            assert r.status_code == 200 and len(r.json()["forecast"]) == 4, r.text
            exact = r.json()["forecast"]
            # aligned at the end: a longer history list starts earlier (its first items unread)
            longer = c.post("/forecast", json={**ok, "covariates": {"temp": [9.0, *temp[:n]]}})
            assert longer.status_code == 200 and longer.json()["forecast"] == exact, longer.text
            # a shorter one covers the latest values: the forecast of the history from there,
            # as the pyfunc path forecasts that history
            short = c.post("/forecast", json={**ok, "covariates": {"temp": temp[3:n]}})
            assert short.status_code == 200, short.text
            frame = pd.DataFrame({"unique_id": "s", "ds": ds[3:],
                                  "y": [*values[3:], *[np.nan] * 4], "temp": temp[3:]})
            pyfunc = f.predict(frame)["y_hat"].to_numpy()
            np.testing.assert_array_equal(np.float32(short.json()["forecast"]), pyfunc)
            for case, (body, loc) in cases.items():
                r = c.post("/forecast", json=body)
                assert r.status_code == 422, (case, r.text)
                assert [d["loc"] for d in r.json()["detail"]] == [loc], (case, r.text)
                assert_ready(c)
            schema = c.get("/docs.json").json()["paths"]["/forecast"]["post"]["requestBody"][
                "content"]["application/json"]["schema"]
            required = ("last_timestamp", "covariates", "future_covariates")
            assert {"values", *required} <= set(schema["required"])
            assert not any(schema["properties"][f].get("nullable") for f in required)
            history = schema["properties"]["covariates"]["properties"]["temp"]
            future = schema["properties"]["future_covariates"]["properties"]["temp"]
            assert history["minItems"] == 8 and future["minItems"] == future["maxItems"] == 4
            r = c.post("/forecast", json=cases["future too short"][0])
            assert "the model's horizon 4 values, the forecast steps', got 3" in r.text, r.text
            r = c.post("/forecast_batch", json={"series": [
                {"id": "a", **ok}, {"id": "b", **{**ok, "covariates": None}}]})
            assert r.status_code == 200, r.text
            a, b = r.json()["forecasts"]
            assert len(a["forecast"]) == 4 and b["errors"][0]["loc"] == [
                "series", 1, "covariates", "temp"], r.text
            result = _schemathesis(srv.url)
            assert result.returncode == 0, result.stdout[-5000:]
            assert_ready(c)
    finally:
        assert srv.stop() == 0


def test_a_non_finite_forecast_is_a_422_never_a_null(tmp_path):
    """Values the schema allows cannot make a healthy model's forecast non-finite on their own
    (``test_histories_at_the_value_bounds_are_forecast``), but a batch series named like a
    training series is scaled with that series' stored statistics, and those can: its answer is
    an error object naming its values, the other series are forecast; never a null or a 500."""
    f = toy_forecaster(FeatureSpec(8, 4, freq="h"), known=["big", "ok"])
    f.scaler.loc[0] = f.scaler.scale[0] = np.finfo(np.float32).max  # "big": beyond float32
    values = np.random.default_rng(3).normal(5, 1, 12).tolist()
    with folder_server(tmp_path, f) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/forecast_batch", json={"series": [{"id": "big", "values": values},
                                                       {"id": "ok", "values": values}]})
        assert r.status_code == 200, r.text
        big, ok = r.json()["forecasts"]
        assert big["errors"][0]["type"] == "non_finite_forecast" and big["errors"][0]["loc"] == [
            "series", 0, "values"], r.text
        assert len(ok["forecast"]) == 4 and "null" not in json.dumps(r.json()["forecasts"])
        r = c.post("/forecast", json={"values": values})  # its own statistics: finite
        assert r.status_code == 200 and all(map(math.isfinite, r.json()["forecast"])), r.text
        assert c.get("/readyz").status_code == 200


@pytest.mark.slow  # serving an exported folder without a store: test_pipelines_serve_wrapper_and_export
def test_a_built_bento_serves_its_own_model_without_a_tracking_store(store, tmp_path, meta):
    """--export-bento, then `bentoml build` (bentofile.yaml), then `bentoml serve` of the Bento
    with an empty tracking store: the model comes from inside the Bento."""
    home = {"BENTOML_HOME": str(tmp_path / "bentoml")}
    env = {**os.environ, **{k: v for k, v in store.items() if k != "tmp"}, **home}
    exported = subprocess.run([sys.executable, "-m", "pipelines.serve", "--export-bento"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr[-3000:]
    tag = re.search(r"saved BentoML model (\S+);", exported.stdout)[1]
    built = subprocess.run([sys.executable, "-m", "bentoml", "build"], cwd=ROOT, timeout=180,
                           env={**env, "FORECASTER_BENTO_MODEL": tag}, capture_output=True,
                           text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    srv = Server({**home, "FORECASTER_BENTO_MODEL": tag,
                  "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}, tmp_path,
                 cmd=[sys.executable, "-m", "bentoml", "serve", "forecaster:latest"])
    try:
        srv.wait_ready()
        values, _ = history(meta)
        r = httpx.post(srv.url + "/forecast", json={"values": values}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == meta["version"]
    finally:
        srv.stop()


@pytest.mark.parametrize("value,expected", [("1", 1), (" 4 ", 4), ("cpu_count", "cpu_count")])
def test_workers_setting(value, expected):
    from forecaster.serving.service import _workers

    assert _workers(value) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_a_bad_workers_setting_is_named(value):
    from forecaster.serving.service import _workers

    with pytest.raises(SystemExit, match="FORECASTER_WORKERS must be a positive integer or "
                                         "'cpu_count'"):
        _workers(value)


def test_schemathesis_finds_no_5xx_and_no_schema_violation(server):
    """A bounded property-based run against /docs.json (schemathesis, in the dev extra)."""
    pytest.importorskip("schemathesis")
    result = _schemathesis(server.url)
    assert result.returncode == 0, result.stdout[-5000:]


@pytest.mark.timeout(240)
def test_random_paths_leave_metrics_flat(client, meta):
    """2,000 random paths (a scanner) add no time series: the metrics are labelled by route
    template, unknown paths share one label."""
    rng = np.random.default_rng(0)

    def flood(n: int) -> None:
        for k in range(n):
            assert client.get(f"/{rng.integers(1 << 48):x}/{k}").status_code == 404

    flood(5)  # the unmatched label's series exist before the first measurement
    values, _ = history(meta)  # and /forecast's, whichever tests ran before
    assert client.post("/forecast", json={"values": values}).status_code == 200
    before = client.get("/metrics").text
    flood(2000)
    after = client.get("/metrics").text
    print(f"/metrics: {len(before)} bytes before, {len(after)} after 2,000 random paths")
    assert len(after) <= 1.1 * len(before), (len(before), len(after))
    endpoints = set(re.findall(r'endpoint="([^"]*)"', after))
    assert {"unmatched", "/forecast"} <= endpoints, endpoints
    assert not [e for e in endpoints if re.fullmatch(r"/[0-9a-f]+/\d+", e)], endpoints
