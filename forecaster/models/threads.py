"""A training run's torch threads, chosen when it starts and again at each epoch, so a run
that began on idle cores gives them back when other work arrives (``forecaster.runtime``)."""

from __future__ import annotations

import os

import lightning as L

from forecaster import runtime


def parallel_jobs(trainer_cfg, launcher_cfg=None) -> int:
    """Processes of this job that train at once on the machine: the joblib launcher's
    ``n_jobs`` (a sweep) times the DDP processes per node."""
    jobs = 1
    if launcher_cfg is not None and "n_jobs" in launcher_cfg:
        n = int(launcher_cfg.n_jobs)
        jobs = n if n > 0 else max(1, runtime.available_cpus() + 1 + n)  # joblib: -1 is all
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 0))
    if not ranks and "ddp" in str(trainer_cfg.get("strategy", "")):
        devices = trainer_cfg.get("devices", 1)
        ranks = devices if isinstance(devices, int) and devices > 0 else runtime.available_cpus()
    return jobs * max(1, ranks)


class FollowCPUs(L.Callback):
    """Sets torch's threads by ``choose(...)`` before each training epoch and logs them as
    ``runtime/threads``."""

    def __init__(self, choose):
        self.choose = choose

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        choice = runtime.apply(self.choose())
        pl_module.log("runtime/threads", float(choice.threads), on_step=False, on_epoch=True)
