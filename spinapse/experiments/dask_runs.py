"""Run independent training runs on a Dask cluster: one task per run, a lost worker costs one run.

Each :class:`Call` is submitted as one Dask task (``pure=False``: a run is never taken from a
cache), never more at once than the cluster has worker threads, so that each single-threaded
worker holds just the run it trains. A run whose worker process dies
(``distributed.KilledWorker``: a kill, an out-of-memory nanny, a lost machine) is submitted
once more; if that attempt is lost too, or the run raises,
it is reported as failed with its error while every other run goes on. An exception raised by a
run is not retried: runs are seeded and deterministic, so it would only recur.

Progress: a tqdm bar over finished runs; workers publish one event per training epoch (Dask's
``log_event`` / ``subscribe_topic``), shown as the bar's epoch count.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

EPOCH_TOPIC = "spinapse-epoch"
"""Dask event topic on which workers publish one event per training epoch."""


@dataclass(frozen=True)
class Call:
    """One run: ``fn(*args, on_epoch=callable)`` on a worker.

    ``fn`` must be a module-level function (workers import it by name) that accepts an
    ``on_epoch`` keyword and returns something picklable.
    """

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass
class Outcome:
    """What became of one :class:`Call`.

    Attributes
    ----------
    key : str
        The call's key.
    value : Any
        ``fn``'s return value; None if the run failed.
    error : str or None
        ``"KilledWorker: ..."`` or ``"ValueError: ..."`` of the last attempt; None on success.
    traceback : str or None
        The worker's traceback of a raised error (None for a lost worker or success).
    attempts : int
        1, or 2 when the first attempt's worker died.
    """

    key: str
    value: Any = None
    error: str | None = None
    traceback: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


def _publish_epoch(key: str) -> Callable[[], None] | None:
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    return lambda: worker.log_event(EPOCH_TOPIC, key)


def run_call(fn: Callable[..., Any], key: str, *args: Any) -> Any:
    """Worker side of a :class:`Call`: ``fn(*args, on_epoch=...)`` with epoch events."""
    return fn(*args, on_epoch=_publish_epoch(key))


def run_calls(
    client,
    calls: Sequence[Call],
    *,
    retries: int = 1,
    progress: bool = True,
    total_epochs: int | None = None,
    desc: str = "runs",
    on_done: Callable[[Outcome], None] | None = None,
) -> dict[str, Outcome]:
    """Run every call on ``client``'s cluster; return ``{key: Outcome}`` in the order of ``calls``.

    Parameters
    ----------
    client : distributed.Client
        A connected client (:func:`spinapse.experiments.cluster.dask_client`).
    calls : sequence of Call
        Keys must be unique.
    retries : int
        Extra attempts of a run whose worker died (>= 0).
    progress : bool
        Show the bar on stderr.
    total_epochs : int, optional
        Epochs of all runs together, for the bar's epoch count.
    on_done : callable, optional
        Called in this process with each final outcome as it arrives (e.g. to write files).

    Raises
    ------
    ValueError
        If keys repeat or ``retries < 0``.
    """
    from distributed import KilledWorker, wait

    keys = [c.key for c in calls]
    if len(set(keys)) != len(keys):
        raise ValueError("run keys must be unique")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    epochs = 0
    lock = threading.Lock()

    def count_epoch(_event) -> None:
        nonlocal epochs
        with lock:
            epochs += 1

    def submit(call: Call, attempt: int):
        return client.submit(
            run_call,
            call.fn,
            call.key,
            *call.args,
            key=f"spinapse-{call.key}-{attempt}-{uuid.uuid4().hex[:8]}",
            pure=False,
        )

    client.subscribe_topic(EPOCH_TOPIC, count_epoch)
    queue = [(c, 1) for c in calls]  # (call, attempt) not yet submitted, retries first
    by_future: dict[Any, tuple[Call, int]] = {}
    outcomes: dict[str, Outcome] = {}
    bar = tqdm(total=len(calls), desc=desc, unit="run", disable=not progress, leave=False)
    shown = None
    try:
        while queue or by_future:
            # No more runs in flight than worker threads: a worker then holds only the run it
            # trains, and a worker that dies takes no queued run down with it.
            slots = max(1, sum(client.nthreads().values())) - len(by_future)
            while queue and slots > 0:
                call, attempt = queue.pop(0)
                by_future[submit(call, attempt)] = (call, attempt)
                slots -= 1
            try:
                finished = wait(list(by_future), timeout=0.5, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                finished = set()
            for future in finished:
                call, attempt = by_future.pop(future)
                outcome = _outcome(future, call, attempt)
                lost = not outcome.ok and isinstance(future.exception(), KilledWorker)
                if lost and attempt <= retries:
                    queue.insert(0, (call, attempt + 1))
                    continue
                outcomes[call.key] = outcome
                if on_done is not None:
                    on_done(outcome)
                bar.update(1)
            if total_epochs:
                with lock:
                    text = f"{epochs}/{total_epochs} epochs"
                if text != shown:
                    bar.set_postfix_str(text)
                    shown = text
    finally:
        bar.close()
        client.unsubscribe_topic(EPOCH_TOPIC)
        if by_future:  # interrupted: do not leave runs training on the cluster
            client.cancel(list(by_future))
    return {k: outcomes[k] for k in keys}


def _outcome(future, call: Call, attempt: int) -> Outcome:
    if future.status == "finished":
        return Outcome(call.key, value=future.result(), attempts=attempt)
    exc = future.exception()
    tb = future.traceback()
    return Outcome(
        call.key,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_tb(tb)) if tb is not None else None,
        attempts=attempt,
    )
