"""The registry gate is honest: the champion is scored on the challenger's own test windows,
a champion that cannot forecast them refuses the comparison, and ``registry.register_if``
keeps losing runs out of the registry."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from forecaster.tracking import registry, store
from forecaster.training import train
from tests.conftest import SMALL, compose_cfg, small_frame, store_uri


def test_the_champion_is_scored_on_the_challengers_own_windows(tmp_path, trained):
    """Model A (champion, trained on one panel) against model B trained on other series: the
    gate's figure for A is A's forecast of B's test windows, which a backtest of A on B's data
    at those windows reproduces; A's logged test MASE (its own data) plays no part."""
    from forecaster.evaluation.runner import evaluate

    _, first = trained
    other = small_frame(n_series=2, seed=7)
    other["y"] = 3 * other["y"] + 50  # other series: another level and amplitude
    csv = tmp_path / "other.csv"
    other.to_csv(csv, index=False)
    second = train(compose_cfg(tmp_path / "b", [*SMALL, f"data.path={csv}",
                                                f"logger.tracking_uri={store_uri(tmp_path)}",
                                                "registry.gate.beat_baseline=null"]))
    decision = second.decision
    (line,) = [r for r in decision.reasons if "champion v1" in r]
    assert line.startswith("on this run's test windows mase")
    champion_on_b = float(line.rsplit(" ", 1)[1])

    backtest = evaluate(compose_cfg(tmp_path / "eval", [
        "data=csv", f"data.path={csv}", f"logger.tracking_uri={store_uri(tmp_path)}",
        "model_uri=models:/forecaster-rnn/1", "n_windows=19", "step=1",  # B's 19 test origins
        "baselines=[seasonal_naive]", "+logger.enabled=false"], config_name="evaluate"))
    assert backtest.table.loc["model", "mase"] == pytest.approx(champion_on_b, abs=1e-4)
    assert champion_on_b != pytest.approx(first.metrics["test/mase"], abs=1e-4)
    ours, beats = second.metrics["test/mase"], " < champion v1" in line
    assert decision.alias == ("champion" if beats else "challenger")
    # the line rounds to 4 decimals: a tie there (both kept the seasonal-naive base) is no win
    assert beats == (ours < champion_on_b) or abs(ours - champion_on_b) <= 5e-5, line


def test_a_champion_that_cannot_forecast_the_windows_refuses(tmp_path, small_csv, trained):
    second = train(compose_cfg(tmp_path / "b", [*SMALL, f"data.path={small_csv}", "horizon=4",
                                                f"logger.tracking_uri={store_uri(tmp_path)}",
                                                "registry.gate.beat_baseline=null"]))
    assert not second.decision.registered
    reason = second.decision.reasons[-1]
    assert "champion v1 of forecaster-rnn forecasts 6 steps ahead, this model 4" in reason
    assert "registry.model_name=" in reason
    client = MlflowClient(store_uri(tmp_path))
    assert [str(v.version) for v in client.search_model_versions("name='forecaster-rnn'")] == ["1"]
    assert client.get_run(second.run_id).data.tags["registry.version"] == "none"


@pytest.fixture
def client(tmp_path):
    uri = store_uri(tmp_path)
    # an experiment whose files go beside the store in tmp_path, not into the working folder
    with mlflow.start_run(experiment_id=store.prepare_store(uri, "gate")):
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=[])
    return MlflowClient(uri), info.model_uri


class _Constant(mlflow.pyfunc.PythonModel):
    """A stand-in for a trained model: what is registered does not matter to these rules."""

    def predict(self, context, model_input, params=None):
        return model_input


LOSING = ({"mase": 1.2}, {"seasonal_naive": {"mase": 1.0}})


@pytest.mark.parametrize("register_if,registered", [("beats_baseline", False), ("always", True),
                                                    ("never", False)])
def test_register_if_keeps_losing_runs_out(client, register_if, registered):
    client, uri = client
    gate = registry.Gate(register_if=register_if)
    decision = registry.register(client, uri, "m", *LOSING, gate)
    assert decision.registered is registered
    versions = client.search_model_versions("name='m'")
    assert len(versions) == int(registered)
    if registered:
        assert decision.alias == "challenger"  # registered, but it loses to seasonal naive
    else:
        assert f"registry.register_if={register_if}" in decision.reasons[-1]


def test_register_if_never_registers_even_a_winner(client):
    client, uri = client
    decision = registry.register(client, uri, "m", {"mase": 0.5},
                                 {"seasonal_naive": {"mase": 1.0}}, registry.Gate(register_if="never"))
    assert not decision.registered and not client.search_model_versions("name='m'")


def test_an_unknown_register_if_is_named():
    with pytest.raises(ValueError, match="registry.register_if='sometimes' is invalid"):
        registry.Gate(register_if="sometimes")
