"""How many torch threads a process should use: the CPUs it may actually run on, shared with
the other processes of its job, and no more than its work keeps busy.

torch starts one OpenMP thread per core and its threads spin while they wait. When the cores
are shared (a CI runner, a laptop, a sweep's parallel jobs, Spark tasks, a pod with a CPU
limit) a spinning thread burns the CPU the others need, and a parallel region waits for a
thread the scheduler has put aside: beside four busy processes on two cores, a training step
with two threads took 5.5x its one-thread time (``bench/train_speed.py``). The rule here:

    cpus    = the CPUs this process may use: its affinity mask, cut to the cgroup's CPU quota
    share   = cpus // jobs                   the processes of this job that run at once
                                             (sweep jobs, DDP ranks, serving workers, tasks)
    useful  = ceil(work / WORK_PER_THREAD)   threads the per-step work can keep busy
    threads = max(1, min(share, useful))

An explicit setting wins (a config value, ``FORECASTER_TORCH_THREADS``, then
``OMP_NUM_THREADS``). The rule reads the machine's limits, not its momentary load: a thread
count can change a result in the last bits (sums split across threads round differently; the
daily panel of ``bench/train_speed.py`` scored test MASE 1.3649 with two threads and 1.3641
with one), so a seed gives the same metrics on the same machine only if the count does not
follow the load.

Waiting: OpenMP's passive policy (no spin at all) tripled the step time alone, since every
small parallel region then costs a sleep and a wake-up; ``GOMP_SPINCOUNT=1000`` (a few
microseconds, against libgomp's default 300,000) kept the speed alone and cut the collapse
beside other work to about 2x (from 5.5x). It must be in the environment before torch loads
its OpenMP runtime: :func:`prepare_openmp` is called first thing by the entry points. Nothing
heavy is imported here: the entry points call it before torch exists in the process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from forecaster.errors import ConfigError

THREADS_ENV = "FORECASTER_TORCH_THREADS"
SPIN_ENV, SPIN_DEFAULT = "GOMP_SPINCOUNT", "1000"
# Elements (rows x hidden units x members) per step that keep one more thread busy: below
# this a second thread's fork and join cost what it saves (measured in bench/train_speed.py:
# the default CO2 run, 64 x 64 x 4, ran no faster with two threads and used 1.5x the CPU).
WORK_PER_THREAD = 1 << 15
_CGROUP = Path("/sys/fs/cgroup")


class ThreadSettingError(ConfigError):
    """A thread setting that is not a positive whole number (or ``auto``)."""


def prepare_openmp() -> None:
    """Short spins for waiting OpenMP threads, unless the user chose a policy: call before
    torch is imported (later it changes nothing)."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault(SPIN_ENV, SPIN_DEFAULT)


def cgroup_cpu_limit(root: Path = _CGROUP, membership: str = "/proc/self/cgroup") -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``), the tightest along this process's cgroup path; None for none."""
    limits = []
    for line in _read(membership).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: quota and period in one file
            base = root if (root / "cpu.max").exists() or not (root / "unified").exists() \
                else root / "unified"
            for folder in _ancestors(base, path):
                quota, _, period = _read(folder / "cpu.max").partition(" ")
                limits.append(_ratio(quota, period))
        elif "cpu" in controllers.split(","):
            for name in ("cpu,cpuacct", "cpu"):
                if (root / name).is_dir():
                    for folder in _ancestors(root / name, path):
                        limits.append(_ratio(_read(folder / "cpu.cfs_quota_us"),
                                             _read(folder / "cpu.cfs_period_us")))
                    break
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, cut to the cgroup's quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


@dataclass(frozen=True)
class ThreadChoice:
    """How many torch threads, and why (logged with a run)."""

    threads: int
    source: str  # "auto", or the setting that decided it
    cpus: int = 0
    jobs: int = 1
    useful: int = 0

    def describe(self) -> str:
        if self.source != "auto":
            return f"{self.threads} (set by {self.source})"
        return (f"{self.threads} (auto: {self.cpus} CPUs available, {self.jobs} parallel "
                f"job{'s' * (self.jobs != 1)}, the work keeps {self.useful} busy)")


def parse_threads(value, name: str) -> int | None:
    """A thread setting: a positive whole number, or None for ``auto`` / unset / empty."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1 or str(n) != str(value).strip():
        raise ThreadSettingError(f"{name}={value!r} is invalid: it must be a positive whole "
                                 "number of threads, or auto")
    return n


def explicit_threads(setting=None, setting_name: str = "threads") -> tuple[int, str] | None:
    """The thread count the user set, and where: ``setting`` (a config value), then
    ``FORECASTER_TORCH_THREADS``, then ``OMP_NUM_THREADS``; None when all say auto."""
    for name, value in ((setting_name, setting), (THREADS_ENV, os.environ.get(THREADS_ENV)),
                        ("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS"))):
        n = parse_threads(value, name)
        if n is not None:
            return n, name
    return None


def choose_threads(setting=None, *, jobs: int = 1, work: int | None = None,
                   setting_name: str = "threads", cpus: int | None = None) -> ThreadChoice:
    """The thread count by the rule in this module's docstring (the same answer for the same
    machine, job and work).

    Args:
        setting: the config's value (None or ``auto``: decide).
        jobs: processes of the same job that run at once on these CPUs.
        work: elements one step's main operations process (rows x units x members); None
            for no cap.
        setting_name: how the setting is named in a message (``trainer.threads``).
        cpus: the CPUs granted (a Spark task's ``spark.task.cpus``); default: what the
            affinity mask and cgroup allow.
    """
    chosen = explicit_threads(setting, setting_name)
    if chosen is not None:
        return ThreadChoice(chosen[0], chosen[1])
    cpus = cpus or available_cpus()
    jobs = max(1, int(jobs))
    share = max(1, cpus // jobs)
    useful = share if work is None else max(1, math.ceil(work / WORK_PER_THREAD))
    return ThreadChoice(max(1, min(share, useful)), "auto", cpus, jobs, useful)


def parallel_jobs(trainer_cfg, launcher_cfg=None) -> int:
    """Processes of a training job that run at once on the machine: the joblib launcher's
    ``n_jobs`` (a sweep; ``-1`` is all CPUs) times the DDP processes per node (torchrun's
    ``LOCAL_WORLD_SIZE``, else ``trainer.devices`` with a ``ddp`` strategy)."""
    jobs = 1
    if launcher_cfg is not None and "n_jobs" in launcher_cfg:
        n = int(launcher_cfg.n_jobs)
        jobs = n if n > 0 else max(1, available_cpus() + 1 + n)
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 0))
    if not ranks and "ddp" in str(trainer_cfg.get("strategy", "")):
        devices = trainer_cfg.get("devices", 1)
        ranks = devices if isinstance(devices, int) and devices > 0 else available_cpus()
    return jobs * max(1, ranks)


def apply(choice: ThreadChoice) -> ThreadChoice:
    """Set torch's intra-op threads to the choice (imports torch)."""
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def _read(path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _ancestors(base: Path, path: str) -> list[Path]:
    """``base/path`` and each folder above it up to ``base``."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = float(quota), float(period)
    except ValueError:  # "max": no quota
        return None
    return q / p if q > 0 and p > 0 else None
