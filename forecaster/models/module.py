"""The LightningModule: an ``RNNForecastNet`` (or an ensemble of them) trained with the configured
loss on window-normalised errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import Tensor

from forecaster.models.losses import ForecastLoss
from forecaster.nn import EnsembleNet, RNNForecastNet
from forecaster.nn.network import window_scale


class ForecastModule(L.LightningModule):
    """Fits an ``RNNForecastNet`` or an ``EnsembleNet`` to the batches of ``forecaster.data``
    (docs/architecture.md).

    The loss compares forecast and target divided by the window's scale (``window_scale``). An
    ensemble's members are trained side by side on the same batches, each on its own loss
    (their mean is minimised, so no member's gradient reaches another); validation scores the
    members' mean loss, and ``val/mae`` the median forecast.

    Args:
        net: the network; its outputs per step must match ``loss.n_outputs``.
        loss: the training loss (MSE, MAE or pinball over quantiles).
        optimizer: a partial optimiser taking ``params`` (Hydra ``_partial_: true``), e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``.
        scheduler: an optional partial LR scheduler taking the optimiser; ``ReduceLROnPlateau``
            and others are stepped each epoch, monitoring ``val/loss``.
        loss_scale: the window scale errors are divided by: ``std`` (MASE-like),
            ``meanabs`` (relative errors, sMAPE-like) or ``none``; a list gives each ensemble
            member its own (the first one is the unit of ``val/mae``).

    Logged: ``train/loss``, ``val/loss``, ``val/mae`` (scaled), ``val/loss_best`` each epoch.
    """

    def __init__(
        self,
        net: RNNForecastNet | EnsembleNet,
        loss: ForecastLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
        loss_scale: str | Sequence[str] = "std",
    ):
        super().__init__()
        if net.n_outputs != loss.n_outputs:
            raise ValueError(
                f"the network emits {net.n_outputs} outputs per step but loss '{loss.name}' "
                f"needs {loss.n_outputs}"
            )
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_loss_best = float("inf")
        self._train_sum, self._train_count = 0.0, 0  # this epoch's training loss x windows
        kinds = [loss_scale] if isinstance(loss_scale, str) else list(loss_scale)
        K = len(net.members) if isinstance(net, EnsembleNet) else 1
        if len(kinds) not in (1, K):
            raise ValueError(f"{len(kinds)} loss scales for {K} members")
        self.member_scales = kinds * K if len(kinds) == 1 else kinds
        self.loss_scale = kinds[0]

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Scaled forecasts ``[B, H, Q]`` for a batch of windows."""
        return self.net(batch["x"], batch["futr"], batch["static"])

    def transfer_batch_to_device(self, batch: dict, device: torch.device, dataloader_idx: int):
        """The batches are built on the CPU: on a CPU run there is nothing to move, and
        Lightning's walk over the batch dict cost a millisecond a step (a fifth of a CO2
        step, bench/train_speed.py --loop)."""
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def compute_loss(self, batch: dict[str, Tensor], point: bool = False) -> tuple[Tensor, Tensor | None]:
        """The training loss of a batch, and with ``point`` the (median) forecast ``[B, H, Q]``
        in window-scale units."""
        # errors in units of the window's scale: every window weighs the same whatever the
        # series' units (scale-free, like MASE)
        target = batch["x"][..., 0]  # [B, L]
        scales = {k: window_scale(target, k)[..., None] for k in set(self.member_scales)}
        s = scales[self.loss_scale]  # [B, 1, 1]
        if isinstance(self.net, EnsembleNet):
            members = self.net.forward_members(batch["x"], batch["futr"], batch["static"])
            loss = torch.stack([self.loss(m / scales[k], batch["y"] / scales[k][..., 0])
                                for m, k in zip(members, self.member_scales)]).mean()
            return loss, (members / s).quantile(0.5, dim=0) if point else None  # [B, H, Q]
        y = batch["y"] / s[..., 0]  # [B, H]
        y_hat = self(batch) / s  # [B, H, Q]
        return self.loss(y_hat, y), y_hat

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        loss, y_hat = self.compute_loss(batch, point=stage != "train")
        B = batch["y"].shape[0]
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=B,
                 sync_dist=True)
        if stage != "train":
            s = window_scale(batch["x"][..., 0], self.loss_scale)  # [B, 1]
            err = (self.loss.point(y_hat) - batch["y"] / s).abs().mean()
            self.log(f"{stage}/mae", err, on_step=False, on_epoch=True, batch_size=B, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The batch's loss; ``train/loss`` (the epoch's mean over windows) is summed here and
        logged once at the epoch's end: ``self.log`` on every step cost a tenth of a CO2 step."""
        loss, _ = self.compute_loss(batch)
        B = batch["y"].shape[0]
        self._train_sum = self._train_sum + loss.detach() * B
        self._train_count += B
        return loss

    def on_train_epoch_start(self) -> None:
        self._train_sum, self._train_count = 0.0, 0

    def on_train_epoch_end(self) -> None:
        if self._train_count:
            self.log("train/loss", self._train_sum / self._train_count, prog_bar=True,
                     sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        val = self.trainer.callback_metrics.get("val/loss")
        if val is not None and not self.trainer.sanity_checking:
            self.val_loss_best = min(self.val_loss_best, float(val))
            self.log("val/loss_best", self.val_loss_best, sync_dist=True)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_loss_best"] = self.val_loss_best

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_loss_best = checkpoint.get("val_loss_best", float("inf"))
