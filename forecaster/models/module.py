"""The LightningModule: an ``RNNForecastNet`` trained on scaled windows with the configured loss."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor

from forecaster.models.losses import ForecastLoss
from forecaster.nn import RNNForecastNet


class ForecastModule(L.LightningModule):
    """Fits an ``RNNForecastNet`` to the batches of ``forecaster.data`` (docs/architecture.md).

    Args:
        net: the network; its outputs per step must match ``loss.n_outputs``.
        loss: the training loss (MSE, MAE or pinball over quantiles), on scaled values.
        optimizer: a partial optimiser taking ``params`` (Hydra ``_partial_: true``), e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``.
        scheduler: an optional partial LR scheduler taking the optimiser; ``ReduceLROnPlateau``
            and others are stepped each epoch, monitoring ``val/loss``.

    Logged: ``train/loss``, ``val/loss``, ``val/mae`` (scaled), ``val/loss_best`` each epoch.
    """

    def __init__(
        self,
        net: RNNForecastNet,
        loss: ForecastLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None = None,
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

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Scaled forecasts ``[B, H, Q]`` for a batch of windows."""
        return self.net(batch["x"], batch["futr"], batch["static"])

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        y_hat = self(batch)  # [B, H, Q]
        loss = self.loss(y_hat, batch["y"])
        B = batch["y"].shape[0]
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=B,
                 sync_dist=True)
        if stage != "train":
            err = (self.loss.point(y_hat) - batch["y"]).abs().mean()
            self.log(f"{stage}/mae", err, on_step=False, on_epoch=True, batch_size=B, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

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
