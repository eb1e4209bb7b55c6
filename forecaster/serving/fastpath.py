"""The array fast path: checked series -> flat arrays -> ``Forecaster.predict_arrays`` (the
numpy batch core ``batch_from_arrays`` -> ``predict_batch``, the same numbers as the pyfunc
model's ``Forecaster.predict``), and the micro-batcher that shares forward passes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from forecaster.data.frames import DataValidationError
from forecaster.models.predictor import NonFiniteForecastError
from forecaster.serving.rules import FieldError, RequestError, Series


class FastPath:
    """Forecasts of checked series in one batched pass (a mixin of ``ServedModel``)."""

    def arrays(self, series: Sequence[Series]) -> dict:
        """The flat arrays ``Forecaster.predict_arrays`` reads, built from the checked series.

        Returns:
            keyword arguments: ``y`` [N], ``offsets`` [S+1], ``ids`` (S), and ``ds`` [N] (calendar
            models), ``exog`` [N, K] / ``futr_exog`` [S, H, K] (models with covariates).
        """
        S = len(series)
        lengths = np.fromiter((len(s.values) for s in series), dtype=np.int64, count=S)  # [S]
        offsets = np.zeros(S + 1, dtype=np.int64)  # [S+1]
        np.cumsum(lengths, out=offsets[1:])
        N = int(offsets[-1])
        y = np.fromiter(itertools.chain.from_iterable(s.values for s in series),
                        dtype=np.float64, count=N)  # [N]
        out = {"y": y, "offsets": offsets, "ids": self.ids(series)}
        if self.calendar:
            out["ds"] = np.concatenate([s.ds.values for s in series])  # [N]
            out["freq"] = self.freq  # a calendar model's series came with a last_timestamp
        if self.futr_exog:
            H, K = self.horizon, len(self.futr_exog)
            # each covariate list is the series' n history values, then the model's H future ones
            shift = np.repeat(np.arange(S, dtype=np.int64) * H, lengths)  # [N]
            history_rows = np.arange(N) + shift  # [N]
            future_rows = (offsets[1:] + np.arange(S) * H)[:, None] + np.arange(H)  # [S, H]
            exog = np.empty((N, K))  # [N, K]
            futr = np.empty((S, H, K))  # [S, H, K]
            for k, name in enumerate(self.futr_exog):
                col = np.fromiter(itertools.chain.from_iterable(s.covariates[name] for s in series),
                                  dtype=np.float64, count=N + S * H)
                exog[:, k], futr[:, :, k] = col[history_rows], col[future_rows]
            out["exog"], out["futr_exog"] = exog, futr
        return out

    def predict(self, series: Sequence[Series]) -> np.ndarray:
        """Forecasts ``[B, H, Q]`` in the order of ``series`` (one batched forward pass).

        Runs ``Forecaster.predict_arrays``: the array core ``Forecaster.predict`` (and so the
        pyfunc model) also runs, without building a frame.
        """
        try:
            values, _, _ = self.forecaster.predict_arrays(**self.arrays(series))
        except DataValidationError as err:  # a rule the checks above missed: still the client's
            field = "last_timestamp" if "'ds'" in str(err) else "values"
            raise RequestError([FieldError((field,), str(err), "data_validation")]) from err
        return values  # [B, H, Q]

    @staticmethod
    def ids(series: Sequence[Series]) -> list[str]:
        # unnamed series get ids no training series has, so their scalers are fitted on the
        # history they bring, as the pyfunc model does for a series it does not know
        return [s.id if s.id is not None else f"__request_{k}" for k, s in enumerate(series)]


class MicroBatcher:
    """Runs concurrent single-series requests together, without waiting for a batch to fill.

    While one forward pass runs, the requests that arrive queue up; the next pass takes all of
    them (at most ``max_batch``). A lone request goes alone, at once. The passes run on the
    event loop itself (the numpy batch core is short; in a worker thread a pass fought the
    request parsing for the GIL).
    """

    def __init__(self, fn: Callable[[list], np.ndarray], max_batch: int = 256):
        self.fn, self.max_batch = fn, max_batch
        self._pending: list[tuple[object, asyncio.Future]] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecast")

    async def submit(self, item) -> np.ndarray:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._gather()
                batch = self._pending[:self.max_batch]
                self._pending = self._pending[self.max_batch:]
                items = [item for item, _ in batch]
                try:
                    results = self._run(items)
                except Exception as err:  # noqa: BLE001 - handed to each waiting request
                    results = [err] * len(batch)
                for (_, fut), result in zip(batch, results):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._busy = False

    async def run(self, items: list, chunk: int = 1024
                  ) -> tuple[np.ndarray, dict[int, BaseException]]:
        """One request's many series: passes of at most ``chunk`` series in a worker thread, so
        that probes and other requests are answered meanwhile.

        Returns:
            ``(values, failed)``: ``[B', H, Q]`` forecasts of the series that did not fail, in
            order, and the error of each series (by index) that failed on its own.
        """
        loop = asyncio.get_running_loop()
        values, failed = [], {}
        for k in range(0, len(items), chunk):
            part, part_failed = await loop.run_in_executor(
                self._executor, self._run_many, items[k:k + chunk])
            values.append(part)
            failed.update({k + i: err for i, err in part_failed.items()})
        values = [v for v in values if len(v)]
        if not values:
            return np.empty((0, 0, 0), np.float32), failed
        return (np.concatenate(values) if len(values) > 1 else values[0]), failed

    def _run_many(self, items: list) -> tuple[np.ndarray, dict[int, BaseException]]:
        try:
            return self.fn(items), {}
        except (NonFiniteForecastError, RequestError):
            pass
        out = self._one_by_one(items)
        ok = [r for r in out if not isinstance(r, BaseException)]
        shape = ok[0].shape if ok else (0, 0)
        return (np.stack(ok) if ok else np.empty((0, *shape), np.float32),
                {k: r for k, r in enumerate(out) if isinstance(r, BaseException)})

    async def _gather(self, max_wait_s: float = 0.002, idle_turns: int = 8) -> None:
        """Let the requests already received reach ``submit``: a request takes several turns of
        the event loop (body, parsing, middleware) before it queues. Stops when the queue stops
        growing for ``idle_turns`` turns, or after ``max_wait_s``."""
        deadline, idle = time.perf_counter() + max_wait_s, 0
        while idle < idle_turns and len(self._pending) < self.max_batch:
            n = len(self._pending)
            await asyncio.sleep(0)
            idle = idle + 1 if len(self._pending) == n else 0
            if time.perf_counter() > deadline:
                break

    def _run(self, items: list) -> list:
        try:
            return list(self.fn(items))
        except (NonFiniteForecastError, RequestError):
            if len(items) == 1:
                raise
        return self._one_by_one(items)

    def _one_by_one(self, items: list) -> list:
        """Each item's ``[H, Q]`` forecasts, or its error: one series' bad data or non-finite
        forecast must not fail the others."""
        out = []
        for item in items:
            try:
                out.append(self.fn([item])[0])
            except (NonFiniteForecastError, RequestError) as err:
                out.append(err)
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True)
