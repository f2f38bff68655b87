"""Adaptive micro-batching over a bounded queue, one batcher per served model version.

Requests wait in a deque; one worker task takes as many as fit in ``max_batch_size``
rows, runs a single ``predict`` in the model's own thread (or, for models that answer in well under a millisecond, on the
event loop itself) and hands each request its
slice of the answer. While a batch runs, new requests pile up and form the next batch, so
batches grow with load by themselves. Before running a batch the worker lets requests that
are already arriving join (a few event-loop turns, never more than ``max_wait_ms`` after
the first): it stops as soon as nobody new shows up, so a lone client, or a few clients
that wait for their answers, never pay a fixed wait.
A full queue answers 503 with ``Retry-After`` instead of growing memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from conveyor.serving._codec import Columns, concat
from conveyor.serving._errors import HTTPError

PredictFn = Callable[[Columns, int], Columns]
#: event-loop turns without a new request after which a batch stops waiting for company
_IDLE_TURNS = 3


@dataclass(slots=True)
class _Item:
    cols: Columns
    rows: int
    future: asyncio.Future[Columns]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Run ``predict(columns, rows) -> named outputs`` for many requests at once.

    Example::

        batcher = Batcher(predict, name="iris/3", max_batch_size=64, max_wait_ms=2)
        outputs = await batcher.submit(columns, rows)   # inside the event loop
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        name: str,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        queue_size: int = 1024,
        batching: bool = True,
        inline_below_ms: float = 1.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._predict = predict
        self.name = name
        self.max_rows = max_batch_size if batching else 1
        self.max_wait = max_wait_ms / 1000 if batching else 0.0
        self.queue_size = queue_size
        self._on_batch = on_batch
        self._items: deque[_Item] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"predict-{name}")
        self._busy = 0  # requests taken from the queue and not answered yet
        self._closing = False
        self.inline_below = inline_below_ms / 1000
        self._cost: float | None = None  # moving average of one predict call, seconds
        self._calls = 0

    @property
    def depth(self) -> int:
        """Requests waiting or being predicted."""
        return len(self._items) + self._busy

    def _ensure_started(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")
        return self._wake

    async def submit(self, cols: Columns, rows: int) -> Columns:
        """Queue one request; its own outputs come back (503 when the queue is full)."""
        wake = self._ensure_started()
        if self._closing:
            raise HTTPError(503, f"model {self.name} is shutting down", headers={"retry-after": "1"})
        if len(self._items) >= self.queue_size:
            raise HTTPError(
                503, f"model {self.name} is busy: {len(self._items)} requests queued (queue_size)",
                headers={"retry-after": "1"},
            )
        future: asyncio.Future[Columns] = asyncio.get_running_loop().create_future()
        self._items.append(_Item(cols, rows, future))
        wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, rows = self._take()
            if not batch:
                continue
            if self.max_wait and rows < self.max_rows:
                batch, rows = await self._gather_more(batch, rows)
            self._busy = len(batch)
            try:
                await self._execute(loop, batch, rows)
            finally:
                self._busy = 0

    async def _gather_more(self, batch: list[_Item], rows: int) -> tuple[list[_Item], int]:
        """Let requests that are already arriving join, for at most ``max_wait`` after the
        first was queued. Stop as soon as a few loop turns bring nobody new: clients that
        wait for their answers cannot send more, so waiting longer would only add latency."""
        deadline = batch[0].enqueued + self.max_wait
        idle = 0
        while rows < self.max_rows and idle < _IDLE_TURNS and time.perf_counter() < deadline:
            await asyncio.sleep(0)
            more, extra = self._take(self.max_rows - rows)
            if more:
                batch += more
                rows += extra
                idle = 0
            else:
                idle += 1
        return batch, rows

    def _take(self, room: int | None = None) -> tuple[list[_Item], int]:
        room = self.max_rows if room is None else room
        taken: list[_Item] = []
        rows = 0
        while self._items and (not taken or rows + self._items[0].rows <= room) and room > 0:
            item = self._items.popleft()
            if item.future.done():  # the client went away while waiting
                continue
            taken.append(item)
            rows += item.rows
            if rows >= room:
                break
        return taken, rows

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], rows: int) -> None:
        if not batch:
            return
        if self._on_batch is not None:
            self._on_batch(rows)
        try:
            outputs = await self._call(loop, concat([i.cols for i in batch]), rows)
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # One request may have made the whole batch fail: retry each alone so that only
            # the culprit gets the error.
            for item in batch:
                try:
                    _answer(item, await self._call(loop, item.cols, item.rows))
                except Exception as one:
                    _fail(item, one)
            return
        start = 0
        for item in batch:
            stop = start + item.rows
            _answer(item, {n: a[start:stop] for n, a in outputs.items()})
            start = stop

    def _timed(self, cols: Columns, rows: int) -> Columns:
        started = time.perf_counter()
        outputs = self._predict(cols, rows)
        took = time.perf_counter() - started
        self._cost = took if self._cost is None else 0.8 * self._cost + 0.2 * took
        self._calls += 1
        return outputs

    async def _call(self, loop: asyncio.AbstractEventLoop, cols: Columns, rows: int) -> Columns:
        # A model that answers in well under a millisecond runs on the event loop: handing
        # it to a thread would cost more (a GIL hand-over per batch) than the predict.
        # Slower models run in their own thread so the loop keeps reading requests.
        if self._calls >= 8 and self._cost is not None and self._cost < self.inline_below:
            return self._timed(cols, rows)
        return await loop.run_in_executor(self._executor, self._timed, cols, rows)

    async def close(self) -> None:
        """Answer everything queued, then stop (new requests get 503)."""
        self._closing = True
        if self._wake is not None and self._task is not None:
            self._wake.set()
            await self._task
        self._executor.shutdown(wait=True)


def _answer(item: _Item, outputs: Columns) -> None:
    if not item.future.done():
        item.future.set_result(outputs)


def _fail(item: _Item, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
