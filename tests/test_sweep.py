"""spinapse sweep: grid expansion, Dask execution (local cluster, a real SIGKILL of a worker, a
separately started scheduler and worker), resume, and byte-identity with spinapse train."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import pytest

from spinapse.cli import main
from spinapse.errors import UsageError
from spinapse.experiments.cluster import dask_client
from spinapse.experiments.dask_runs import Call, run_calls
from spinapse.experiments.sweep import pending_runs, run_sweep
from spinapse.experiments.sweep_grid import load_sweep
from spinapse.experiments.sweep_report import sweep_document

SMALL = """
[model]
hidden = [32]
[train]
epochs = 1
[data]
n_train = 600
"""


def _sweep_file(tmp_path: Path, grid: str, name: str = "s", extra: str = SMALL) -> Path:
    """``<name>.toml``: ``[sweep] base = "<name>-base.toml"`` (the experiment) plus ``grid``."""
    base = tmp_path / f"{name}-base.toml"
    base.write_text(f'name = "{name}"\nresults_dir = "{tmp_path.as_posix()}"\n{extra}')
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[sweep]\nbase = "{base.name}"\n{grid}')
    return path


def _train_alone(tmp_path: Path, run, sweep_file: Path) -> None:
    """``spinapse train`` of one sweep run: the base experiment and --set of its values."""
    base = sweep_file.with_name(sweep_file.stem + "-base.toml")
    argv = ["train", "--no-progress", "--config", str(base)]
    argv += ["--set", f"name={run.name}", "--set", f'results_dir="{(tmp_path / "s").as_posix()}"']
    argv += [arg for f, v in run.values.items() for arg in ("--set", f"{f}={json.dumps(v)}")]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of 2 single-threaded workers, kept warm (torch and the digits
    imported) across the tests of this module; the CLI reaches it by its address."""
    with dask_client("local", workers=2, dashboard=None) as client:
        yield client


# ---------------------------------------------------------------- grid expansion (no training)


def test_grid_expands_every_combination_first_field_slowest(tmp_path):
    path = _sweep_file(
        tmp_path,
        '[sweep.grid]\nmethod.meta = [0, 4.5]\n"tasks.count" = [2, 3]\nseed = [0, 1]\n',
    )
    sweep = load_sweep(path, ["train.epochs=2"])
    assert sweep.fields == ["method.meta", "tasks.count", "seed"]
    assert len(sweep.runs) == 8
    assert [r.name for r in sweep.runs[:3]] == [
        "meta-0_count-2_seed-0",
        "meta-0_count-2_seed-1",
        "meta-0_count-3_seed-0",
    ]
    last = sweep.runs[-1]
    assert last.values == {"method.meta": 4.5, "tasks.count": 3, "seed": 1}
    c = last.config
    assert (c.method.meta, c.tasks.count, c.seed, c.train.epochs) == (4.5, 3, 1, 2)
    assert (c.name, c.results_dir) == (last.name, (tmp_path / "s").as_posix())
    assert c.model.hidden == [32] and c.data.n_train == 600  # the base tables apply to every run
    assert sweep.folder == tmp_path / "s"


def test_grids_union_and_duplicates_run_once(tmp_path):
    grid = (
        "[[sweep.grid]]\nmethod.meta = [0, 2]\nseed = [0, 1]\n"
        '[[sweep.grid]]\nmethod.kind = ["ewc"]\nseed = [0, 1]\n'
        "[[sweep.grid]]\nmethod.meta = [2]\nseed = [1]\n"  # already in the first grid
    )
    sweep = load_sweep(_sweep_file(tmp_path, grid))
    assert [r.name for r in sweep.runs] == [
        "meta-0_seed-0",
        "meta-0_seed-1",
        "meta-2_seed-0",
        "meta-2_seed-1",
        "kind-ewc_seed-0",
        "kind-ewc_seed-1",
    ]
    assert sweep.fields == ["method.meta", "seed", "method.kind"]
    assert sweep.runs[4].config.method.kind == "ewc"


@pytest.mark.parametrize("name", ["m_sweep", "m_sweep_quick"])
def test_shipped_m_sweeps_expand_to_12_runs_of_the_documented_settings(name):
    from importlib import resources

    path = resources.files("spinapse") / "configs" / f"{name}.toml"
    sweep = load_sweep(path)
    assert sweep.fields == ["method.meta", "seed"] and len(sweep.runs) == 12
    assert {r.config.seed for r in sweep.runs} == {0, 1, 2}
    metas = sorted({r.config.method.meta for r in sweep.runs})
    if name == "m_sweep":  # docs/continual_learning.md, 3-seed table
        assert metas == [0, 4, 4.5, 5]
        assert sweep.base.train.epochs == 40 and sweep.base.model.hidden == [512, 512]
    else:
        assert metas == [0, 4.5, 9, 18]
        assert sweep.base.train.epochs == 10 and sweep.base.model.hidden == [128, 128]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ("[train]\nepochs = 1\n", UsageError, r"needs a \[sweep.grid\] table"),
        ("[sweep.grid]\nseed = 3\n", UsageError, r"seed must be a non-empty list"),
        ("[sweep.grid]\nseed = []\n", UsageError, r"seed must be a non-empty list"),
        ('[sweep.grid]\nname = ["a", "b"]\n', UsageError, r"cannot sweep name"),
        ("[sweep]\ngrids = 1\n[sweep.grid]\nseed = [0]\n", UsageError, r"unknown \[sweep\] keys"),
        (
            "[sweep.grid]\ntrain.epochs = [1, 0]\n",
            ValueError,
            r"run train\.epochs = 0: train\.epochs: Input should be greater than or equal to 1",
        ),
        ("[sweep.grid]\nmodel.depth = [1]\n", ValueError, r"model\.depth: unknown field"),
    ],
)
def test_bad_sweep_files_name_the_field(tmp_path, body, error, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(error, match=message):
        load_sweep(path)


def test_base_file_is_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "base.toml").write_text('name = "from-base"\n[model]\nhidden = [16]\n')
    path = tmp_path / "exp" / "sweep.toml"
    path.write_text('[sweep]\nbase = "base.toml"\n[sweep.grid]\nseed = [3]\n')
    sweep = load_sweep(path)
    assert sweep.base.name == "from-base" and sweep.runs[0].config.model.hidden == [16]
    assert sweep.runs[0].config.seed == 3


# ---------------------------------------------------------------- the executor and a real SIGKILL


def _always_die(*, on_epoch=None) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _square(x: int, *, on_epoch=None) -> int:
    return x * x


def _raise(*, on_epoch=None) -> None:
    raise ValueError("synapse.card: no such card")


def test_lost_workers_retry_once_then_fail_while_the_other_runs_finish(cluster):
    # Workers import functions by name; these are test functions, so ship them by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        calls = [
            Call("die-always", _always_die, ()),
            Call("raises", _raise, ()),
            *[Call(f"sq-{i}", _square, (i,)) for i in range(4)],
        ]
        out = run_calls(cluster, calls, progress=False)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert [out[f"sq-{i}"].value for i in range(4)] == [0, 1, 4, 9]
    assert all(out[f"sq-{i}"].attempts == 1 for i in range(4))
    assert out["die-always"].attempts == 2 and out["die-always"].error.startswith("KilledWorker")
    assert out["raises"].attempts == 1  # an exception is not retried: runs are deterministic
    assert out["raises"].error == "ValueError: synapse.card: no such card"
    assert "_raise" in out["raises"].traceback


# ---------------------------------------------------------------- sweeps end to end


def test_sweep_results_are_byte_identical_to_spinapse_train_and_resume_skips(
    cluster, tmp_path, capsys
):
    """Acceptance: a 2 x 2 x 2 sweep (seeds x m x tasks) on the local cluster gives the result
    files of the same runs made one by one with spinapse train."""
    grid = "[sweep.grid]\nmethod.meta = [0, 4.5]\ntasks.count = [1, 2]\nseed = [0, 1]\n"
    path = _sweep_file(tmp_path, grid)
    address = cluster.scheduler.address
    argv = ["sweep", "--config", str(path), "--scheduler", address]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "8 runs: 8 trained now, 0 finished before, 0 failed" in out
    sweep = load_sweep(path)
    names = ("results.json", "accuracy.csv")
    made = {(r.name, n): (r.config.out_dir() / n).read_bytes() for r in sweep.runs for n in names}
    one = sweep.runs[-1].config.out_dir()
    alone = tmp_path / "alone.toml"
    shutil.copy(one / "config.toml", alone)
    for run in sweep.runs:
        shutil.rmtree(run.config.out_dir())
        _train_alone(tmp_path, run, path)
    for (name, file), data in made.items():
        assert (tmp_path / "s" / name / file).read_bytes() == data, (name, file)
    # The config.toml the sweep leaves in each run folder re-runs it alone, byte for byte.
    assert main(["train", "--no-progress", "--config", str(alone)]) == 0
    assert (one / "results.json").read_bytes() == made[(sweep.runs[-1].name, "results.json")]

    # The files are the record: a second sweep trains nothing and starts no cluster.
    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "8 runs: 0 trained now, 8 finished before" in out and "Dask" not in out
    doc = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert doc["counts"] == {"done": 0, "skipped": 8, "failed": 0, "pending": 0, "retried": 0}
    by_name = {r["name"]: r for r in doc["runs"]}
    for run in sweep.runs:
        res = json.loads(made[(run.name, "results.json")])
        (acc,) = [body["acc"][-1] for body in res["runs"].values()]
        assert by_name[run.name]["final_percent"] == [100 * a for a in acc]
    # Groups: runs equal but for the seed; one-task streams have no earlier tasks.
    group = next(g for g in doc["groups"] if g["values"] == {"method.meta": 4.5, "tasks.count": 2})
    earlier = [by_name[f"meta-4.5_count-2_seed-{s}"]["final_percent"][0] for s in (0, 1)]
    assert group["seeds"] == [0, 1]
    assert group["earlier_tasks_percent"]["mean"] == pytest.approx(sum(earlier) / 2, abs=1e-9)
    one_task = next(g for g in doc["groups"] if g["values"]["tasks.count"] == 1)
    assert one_task["earlier_tasks_percent"]["mean"] is None
    rows = (tmp_path / "s" / "sweep.csv").read_text().splitlines()
    assert (
        rows[0].startswith("name,method.meta,tasks.count,seed,status,attempts") and len(rows) == 9
    )
    for png in ("tradeoff_m.png", "groups.png"):
        assert (tmp_path / "s" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _kill_a_worker_mid_run(client, folder: Path, killed: list) -> None:
    """Once some run has checkpointed its first task but not finished (so it is mid-run),
    SIGKILL the worker process that trains it."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        started = {p.parts[-4] for p in folder.glob("*/checkpoints/*/task-0.pt")}
        for worker, keys in client.processing().items():
            for run in started:
                if any(str(k).startswith(f"spinapse-{run}-1-") for k in keys):
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(run)
                    return
        time.sleep(0.05)


def test_sigkill_of_a_worker_mid_sweep_retries_its_run_and_the_report_counts_it(cluster, tmp_path):
    """Acceptance: killing a worker process mid-sweep completes every other run, retries the
    killed one, and the report counts it; a run that raises is reported with its error."""
    grid = (
        "[[sweep.grid]]\nseed = [0, 1, 2]\n"
        '[[sweep.grid]]\nsynapse.card = ["no_such_card"]\nseed = [0]\n'
    )
    extra = SMALL.replace("epochs = 1", "epochs = 3") + "[tasks]\ncount = 3\n"
    path = _sweep_file(tmp_path, grid, extra=extra)
    sweep = load_sweep(path)
    todo, done = pending_runs(sweep)
    assert len(todo) == 4 and not done
    killed: list[str] = []
    killer = threading.Thread(
        target=_kill_a_worker_mid_run, args=(cluster, sweep.folder, killed), daemon=True
    )
    killer.start()
    records = run_sweep(cluster, sweep, todo, progress=False)
    killer.join(timeout=5)
    assert len(killed) == 1, "no run was seen mid-training"
    by_name = {r.run.name: r for r in records}
    assert by_name[killed[0]].attempts == 2 and by_name[killed[0]].status == "done"
    failed = by_name["card-no_such_card_seed-0"]
    assert failed.status == "failed" and failed.attempts == 1
    assert "no_such_card" in failed.error
    ok = [r for r in records if r.status == "done"]
    assert len(ok) == 3 and all(len(r.result.acc) == 3 for r in ok)
    # The report of this sweep counts the retried run and the failed one.
    doc = sweep_document(sweep, records)
    assert doc["counts"] == {"done": 3, "skipped": 0, "failed": 1, "pending": 0, "retried": 1}
    assert {r["name"]: r["attempts"] for r in doc["runs"]}[killed[0]] == 2
    # The retried run (resumed from its task checkpoint) equals the same run made alone.
    retried = by_name[killed[0]].run
    kept = (retried.config.out_dir() / "results.json").read_bytes()
    shutil.rmtree(retried.config.out_dir())
    _train_alone(tmp_path, retried, path)
    assert (retried.config.out_dir() / "results.json").read_bytes() == kept
    # The command's report of the same folder counts the failure (the three others are done).
    argv = ["sweep", "--config", str(path), "--scheduler", cluster.scheduler.address]
    assert main([*argv, "--no-progress"]) == 1
    doc = json.loads((sweep.folder / "sweep.json").read_text())
    assert doc["counts"]["failed"] == 1 and doc["counts"]["skipped"] == 3
    assert "no_such_card" in doc["runs"][-1]["error"]
    # --report trains nothing: the unfinished run is listed as not run yet.
    assert main(["sweep", "--config", str(path), "--report"]) == 0
    doc = json.loads((sweep.folder / "sweep.json").read_text())
    assert doc["counts"] == {"done": 0, "skipped": 3, "failed": 0, "pending": 1, "retried": 0}


def test_sweep_on_a_separately_started_scheduler_and_worker(tmp_path, capsys):
    """Acceptance: `dask scheduler` + `dask worker` started apart on localhost run a sweep."""
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
    }
    info = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        + ["--scheduler-file", str(info)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen(
            [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        grid = "[sweep.grid]\nmethod.meta = [0, 3]\n"
        path = _sweep_file(tmp_path, grid, extra=SMALL + "[tasks]\ncount = 2\n")
        argv = ["sweep", "--config", str(path), "--scheduler", address, "--no-progress"]
        assert main(argv) == 0
    finally:
        for p in (worker, scheduler):
            if p is not None:
                p.terminate()
                p.wait(timeout=60)
    assert "2 runs: 2 trained now" in capsys.readouterr().out
    sweep = load_sweep(path)
    for run in sweep.runs:
        kept = (run.config.out_dir() / "results.json").read_bytes()
        shutil.rmtree(run.config.out_dir())
        _train_alone(tmp_path, run, path)
        assert (run.config.out_dir() / "results.json").read_bytes() == kept


def test_bad_scheduler_and_unreachable_address_are_usage_errors(tmp_path, capsys):
    path = _sweep_file(tmp_path, "[sweep.grid]\nseed = [0]\n")
    assert main(["sweep", "--config", str(path), "--scheduler", "slurm"]) == 2
    assert "--scheduler must be 'local' or a scheduler address" in capsys.readouterr().err
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:1", connect_timeout=2):
            pass


# ---------------------------------------------------------------- the report, from known numbers


def _record(run, acc):
    from spinapse.experiments.continual import ContinualResult
    from spinapse.experiments.sweep import RunRecord

    names = [f"t{j}" for j in range(len(acc[-1]))]
    return RunRecord(run, "done", 1, "x", ContinualResult(names, acc=acc), 1.0)


def test_report_groups_over_seeds_and_draws_a_baseline_without_m(tmp_path):
    from spinapse.experiments.sweep_report import table, write_report

    grid = (
        "[[sweep.grid]]\nmethod.meta = [0, 3]\nseed = [0, 1]\n"
        '[[sweep.grid]]\nmethod.kind = ["ewc"]\nseed = [0, 1]\n'
    )
    sweep = load_sweep(_sweep_file(tmp_path, grid))
    finals = {  # final accuracy on (task 1, task 2, task 3) of each run
        "meta-0_seed-0": [0.2, 0.4, 0.9],
        "meta-0_seed-1": [0.3, 0.3, 0.8],
        "meta-3_seed-0": [0.6, 0.7, 0.7],
        "meta-3_seed-1": [0.5, 0.6, 0.6],
        "kind-ewc_seed-0": [0.5, 0.5, 0.5],
        "kind-ewc_seed-1": [0.4, 0.4, 0.4],
    }
    records = [_record(r, [[0.0] * 3, finals[r.name]]) for r in sweep.runs]
    records[-1].status, records[-1].result = "failed", None
    doc = sweep_document(sweep, records)
    g = {json.dumps(x["values"], sort_keys=True): x for x in doc["groups"]}
    m3 = g[json.dumps({"method.kind": None, "method.meta": 3}, sort_keys=True)]
    # earlier tasks: seed 0 (60 + 70) / 2 = 65, seed 1 (50 + 60) / 2 = 55; newest: 70 and 60
    assert m3["earlier_tasks_percent"]["mean"] == pytest.approx(60.0)
    assert m3["earlier_tasks_percent"]["sd"] == pytest.approx(50**0.5)  # sample sd of 65, 55
    assert m3["newest_task_percent"]["mean"] == pytest.approx(65.0)
    ewc = g[json.dumps({"method.kind": "ewc", "method.meta": None}, sort_keys=True)]
    assert ewc["failed"] == 1 and ewc["newest_task_percent"] == {"mean": 50.0, "sd": None, "n": 1}
    assert doc["counts"]["failed"] == 1
    text = table(doc)
    assert "meta=3, kind=-" in text and "60.0 ± 7.1" in text and "65.0 ± 7.1" in text
    files = write_report(sweep, doc)
    assert set(files) == {
        "sweep.json",
        "sweep.csv",
        "sweep_groups.csv",
        "groups.png",
        "tradeoff_m.png",
    }
    rows = (tmp_path / "s" / "sweep_groups.csv").read_text().splitlines()
    assert rows[0] == (
        "method.meta,method.kind,seeds,failed,earlier_tasks_mean_percent,"
        "earlier_tasks_sd_percent,newest_task_mean_percent,newest_task_sd_percent"
    )
    assert rows[2] == "3,,0 1,0,60.00,7.07,65.00,7.07"
