"""A Dask client for the runs of a sweep or a multi-seed study: a local cluster or a running one.

- ``"local"``: a :class:`distributed.LocalCluster` on this machine, one worker process per core
  (or ``workers``), each single-threaded, since a run is one sequential training that sets its
  own torch threads.
- ``"tcp://HOST:PORT"`` (or ``tls://``, ``ws://``, ``wss://``): the scheduler of a cluster that is
  already running (``dask scheduler`` + ``dask worker``, or ``dask-jobqueue``'s
  ``SLURMCluster``; docs/sweeps.md has the recipe). Every worker must have spinapse installed.

Lost workers: the scheduler of the local cluster is made with ``allowed-failures = 0``: a run
whose worker dies is reported to spinapse at once, which retries it once itself and counts it
(:mod:`spinapse.experiments.dask_runs`). A separately started scheduler keeps its own setting:
start it with ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` for the same behaviour (with
Dask's default of 3, the scheduler itself reschedules a run on up to 3 lost workers before
spinapse sees it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os

from spinapse.errors import UsageError

SCHEDULER_SETTINGS = {"distributed.scheduler.allowed-failures": 0}
"""Dask settings of the scheduler spinapse starts (see the module docstring)."""

_ADDRESS_SCHEMES = ("tcp://", "tls://", "ws://", "wss://")


def default_workers() -> int:
    """One worker per core (``os.cpu_count()``, at least 1)."""
    return max(1, os.cpu_count() or 1)


def check_scheduler(scheduler: str) -> str:
    """``scheduler`` if it is ``local`` or an address with a Dask scheme.

    Raises
    ------
    UsageError
        Naming the allowed forms.
    """
    if scheduler == "local" or scheduler.startswith(_ADDRESS_SCHEMES):
        return scheduler
    raise UsageError(
        f"--scheduler must be 'local' or a scheduler address like tcp://HOST:8786, got "
        f"{scheduler!r}"
    )


@contextlib.contextmanager
def dask_client(
    scheduler: str = "local",
    *,
    workers: int | None = None,
    dashboard: str | None = ":8787",
    connect_timeout: float = 30.0,
):
    """Yield a :class:`distributed.Client` of ``scheduler``; a local cluster is closed on exit.

    Parameters
    ----------
    scheduler : str
        ``"local"`` or an address (``tcp://HOST:PORT``).
    workers : int, optional
        Worker processes of a local cluster (default :func:`default_workers`); ignored for an
        address, where the cluster decides.
    dashboard : str or None
        Address of a local cluster's dashboard (``":8787"``; a busy port is replaced by a free
        one); None for none. The dashboard needs ``bokeh`` (the ``cluster`` extra).
    connect_timeout : float
        Seconds to wait for a scheduler address to answer.

    Raises
    ------
    UsageError
        If ``scheduler`` is malformed, ``workers < 1``, or the address does not answer.
    """
    import dask
    from distributed import Client, LocalCluster

    check_scheduler(scheduler)
    if scheduler != "local":
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    n = default_workers() if workers is None else workers
    if n < 1:
        raise UsageError(f"--workers must be >= 1, got {n}")
    # The scheduler reads these when it is made, inside LocalCluster().
    with dask.config.set(SCHEDULER_SETTINGS):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard,
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


def describe(client) -> str:
    """``Dask scheduler tcp://...: 2 workers, dashboard http://...`` (the dashboard when one is
    up: it needs bokeh, and for a scheduler address, bokeh on that scheduler's machine too)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    text = f"Dask scheduler {info.get('address', '?')}: {len(workers)} workers"
    # Without bokeh the scheduler still serves an HTTP page, but no dashboard on it.
    if "dashboard" in info.get("services", {}) and importlib.util.find_spec("bokeh") is not None:
        text += f", dashboard {client.dashboard_link}"
    return text
