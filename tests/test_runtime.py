"""The torch thread rule (``forecaster.runtime``): the CPUs a process may use (affinity,
cgroup quota), shared among parallel jobs and cut to what the work keeps busy; the same answer
for the same machine and job (a seed's metrics depend on it); explicit settings win and a bad
one is named."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

from forecaster import runtime
from forecaster.runtime import parallel_jobs


@pytest.fixture(autouse=True)
def _no_thread_settings(monkeypatch):
    for name in (runtime.THREADS_ENV, "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def _cgroup(tmp_path, membership: str, files: dict[str, str]):
    (tmp_path / "self").write_text(membership)
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return runtime.cgroup_cpu_limit(tmp_path / "fs", str(tmp_path / "self"))


def test_cgroup_v2_quota_is_the_tightest_on_the_path(tmp_path):
    assert _cgroup(tmp_path, "0::/kubepods/pod1\n", {
        "cpu.max": "max 100000", "kubepods/cpu.max": "400000 100000",
        "kubepods/pod1/cpu.max": "150000 100000"}) == 1.5


def test_cgroup_v1_quota(tmp_path):
    assert _cgroup(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}) == 2.0


def test_no_quota_is_none(tmp_path):
    assert _cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000"}) is None
    assert _cgroup(tmp_path, "", {}) is None


def test_auto_shares_the_cpus_and_stops_at_what_the_work_keeps_busy(monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 8)
    assert runtime.choose_threads().threads == 8
    assert runtime.choose_threads(jobs=3).threads == 2  # 8 CPUs among 3 parallel jobs
    assert runtime.choose_threads(jobs=16).threads == 1
    small, large = 64 * 64 * 4, 256 * 64 * 4  # the CO2 and M4 Hourly runs' step work
    assert runtime.choose_threads(work=small).threads == 1
    assert runtime.choose_threads(work=large).threads == 2
    choice = runtime.choose_threads(jobs=2, work=large)
    assert choice.source == "auto" and "8 CPUs available, 2 parallel jobs" in choice.describe()
    assert runtime.choose_threads(cpus=1).threads == 1  # a Spark task's spark.task.cpus


def test_the_machine_is_read_for_real_and_the_answer_does_not_move():
    """On this machine: at least one CPU, a count the affinity mask allows, and the same
    choice every time (nothing sampled: the load does not change a seed's metrics)."""
    assert 1 <= runtime.available_cpus() <= len(os.sched_getaffinity(0))
    choices = {runtime.choose_threads(work=1 << 20) for _ in range(5)}
    assert len(choices) == 1 and 1 <= choices.pop().threads <= runtime.available_cpus()


def test_explicit_settings_win_in_order(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.choose_threads() == runtime.ThreadChoice(3, "OMP_NUM_THREADS")
    monkeypatch.setenv(runtime.THREADS_ENV, "2")
    assert runtime.choose_threads().threads == 2
    choice = runtime.choose_threads(5, setting_name="trainer.threads")
    assert (choice.threads, choice.describe()) == (5, "5 (set by trainer.threads)")
    assert runtime.choose_threads("auto", setting_name="trainer.threads").threads == 2


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", " 2x"])
def test_a_bad_setting_is_named(monkeypatch, value):
    with pytest.raises(runtime.ThreadSettingError, match=r"trainer.threads=.* positive whole"):
        runtime.choose_threads(value, setting_name="trainer.threads")
    monkeypatch.setenv(runtime.THREADS_ENV, value)
    with pytest.raises(runtime.ThreadSettingError, match=runtime.THREADS_ENV):
        runtime.choose_threads()


def test_parallel_jobs_count_sweep_jobs_and_ddp_ranks(monkeypatch):
    trainer = OmegaConf.create({"devices": 1})
    assert parallel_jobs(trainer) == 1
    assert parallel_jobs(trainer, OmegaConf.create({"n_jobs": 4})) == 4
    monkeypatch.setattr(runtime, "available_cpus", lambda: 6)
    assert parallel_jobs(trainer, OmegaConf.create({"n_jobs": -1})) == 6  # joblib: all CPUs
    ddp = OmegaConf.create({"strategy": "ddp", "devices": 2})
    assert parallel_jobs(ddp, OmegaConf.create({"n_jobs": 2})) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # torchrun says how many ranks share the node
    assert parallel_jobs(trainer) == 3


def test_prepare_openmp_keeps_a_users_policy(monkeypatch):
    monkeypatch.delenv(runtime.SPIN_ENV, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    runtime.prepare_openmp()
    assert runtime.SPIN_ENV not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    runtime.prepare_openmp()
    assert os.environ[runtime.SPIN_ENV] == runtime.SPIN_DEFAULT
