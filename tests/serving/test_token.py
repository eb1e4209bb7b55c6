"""The optional bearer token: with FORECASTER_API_TOKEN(_FILE) the forecast endpoints,
/metadata and /metrics need it; the probes stay open; without it nothing changes."""

from __future__ import annotations

import httpx
import pytest

from forecaster.data import FeatureSpec
from forecaster.serving.service import _api_token
from tests.serving.conftest import folder_server, toy_forecaster

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def protected(tmp_path_factory):
    """A server whose token comes from a file (as a mounted secret)."""
    tmp = tmp_path_factory.mktemp("token")
    (tmp / "token").write_text(TOKEN + "\n")
    with folder_server(tmp, toy_forecaster(FeatureSpec(8, 4, freq="h"), known=["a"]),
                       env={"FORECASTER_API_TOKEN_FILE": str(tmp / "token")}) as srv:
        yield srv


CALLS = [("POST", "/forecast", {"values": [1.0] * 8}),
         ("POST", "/forecast_batch", {"series": [{"id": "a", "values": [1.0] * 8}]}),
         ("POST", "/metadata", {}), ("GET", "/metadata", None), ("GET", "/metrics", None)]


@pytest.mark.parametrize("method,path,body", CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_protected_paths_need_the_token(protected, method, path, body):
    with httpx.Client(base_url=protected.url, timeout=30) as c:
        for headers, rule in [({}, "needs the header"),
                              ({"authorization": "Bearer wrong"}, "is not this server's"),
                              ({"authorization": TOKEN}, "is not this server's")]:
            r = c.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            detail = r.json()["detail"][0]
            assert detail["loc"] == ["header", "authorization"] and rule in detail["msg"], r.text
        r = c.request(method, path, json=body, headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text


def test_probes_and_docs_stay_open(protected):
    with httpx.Client(base_url=protected.url, timeout=30) as c:
        assert c.get("/livez").status_code == 200 and c.get("/readyz").status_code == 200
        doc = c.get("/docs.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/forecast"]["post"]["security"] == [{"bearer": []}]


def test_token_settings(tmp_path):
    assert _api_token({}) is None
    assert _api_token({"FORECASTER_API_TOKEN": "abc"}) == "abc"
    (tmp_path / "t").write_text("from-file\n")
    assert _api_token({"FORECASTER_API_TOKEN_FILE": str(tmp_path / "t")}) == "from-file"
    with pytest.raises(SystemExit, match="cannot be read"):
        _api_token({"FORECASTER_API_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(SystemExit, match="the API token is empty"):
        _api_token({"FORECASTER_API_TOKEN": " "})
