"""``spinapse cosim``: files, refusal to overwrite, and resume after a real SIGKILL.

The run (784-16-10, device mode, card mtj_mi_stt, 3 permuted tasks of 40 steps, seed 0) is killed
with SIGKILL (the whole process group: the command and its Verilator child) once the first task's
checkpoint exists, then resumed. The resumed run must not redo the finished tasks (their
checkpoint files are untouched) and must end exactly where the golden prediction of an
uninterrupted run ends (every device's c, W_b, M, thresholds, counters).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spinapse.behavioral.card import load_card
from spinapse.cli import main
from spinapse.cosim.bridge_case import compare, golden_prediction, misorder_target
from spinapse.experiments.cosim_config import load_cosim_config
from spinapse.experiments.cosim_run import task_data

SETS = [
    "network.hidden=16",
    "tasks.count=3",
    "tasks.train_samples=40",
    "tasks.epochs=1",
    "tasks.test_samples=300",
    "baseline=false",
]


def _argv(tmp_path):
    # A relative results folder, as a user types it: the simulator runs in its build folder, so
    # the checkpoints must still land under the user's working directory.
    argv = ["cosim", "--no-progress", "--set", 'out="runs"']
    for s in SETS:
        argv += ["--set", s]
    return argv


def test_killed_cosim_resumes_without_losing_or_redoing_tasks(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = _argv(tmp_path)
    ck = tmp_path / "runs" / "cosim" / "checkpoints"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spinapse", *argv],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 900
    while not (ck / "task0.pt").exists():
        assert proc.poll() is None, "cosim ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 15 minutes"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in ck.glob("task*.pt"))
    assert finished and "task2.pt" not in finished, finished
    before = {name: (ck / name).read_bytes() for name in finished}
    # Without --resume the earlier run's checkpoints are not overwritten.
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    for name, data in before.items():
        assert (ck / name).read_bytes() == data, f"{name} was redone"
    doc = json.loads((tmp_path / "runs" / "cosim" / "results.json").read_text())
    assert doc["resumed_from_task"] == len(finished)
    assert len(doc["acc"]) == 3 and all(len(r) == 3 for r in doc["acc"])
    for name in ("accuracy.csv", "devices.csv", "cosim.png"):
        assert (tmp_path / "runs" / "cosim" / name).stat().st_size > 0
    # The resumed run ends exactly where the golden prediction of an uninterrupted run ends.
    cfg = load_cosim_config(None, [s for s in argv[3::2]])
    data = task_data(cfg)
    gold = golden_prediction(
        cfg.rule(), "device", load_card(cfg.card), [d[0] for d in data], cfg.seed, cfg.device_seed
    )
    import torch

    last = torch.load(ck / "task2.pt", weights_only=False)
    assert compare(last, gold, "device") == []
    # One deliberately mis-ordered pulse in the golden side (the 4th write-pulse command of
    # layer 1: its devices drawn in reverse lane order) is detected.
    bad = golden_prediction(
        cfg.rule(),
        "device",
        load_card(cfg.card),
        [d[0] for d in data],
        cfg.seed,
        cfg.device_seed,
        misorder=(0, misorder_target(gold["arrays"][0])),
    )
    assert any("device" in d for d in compare(last, bad, "device"))


def _fst_times(path):
    """Time steps (ns) of a waveform file and a reader of one top-level signal's values."""
    import pywellen

    w = pywellen.Waveform(str(path))
    scale = str(w.timescale)
    unit_ns = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3}[scale.lstrip("0123456789")]
    factor = int(scale[: len(scale) - 2] or 1) * unit_ns
    times = []
    w.stream_time_steps(lambda t, *_: times.append(t), list(w.all_vars()))
    names = {v.full_name: v for v in w.all_vars()}
    return [t * factor for t in times], times, names


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_waves_window_records_only_the_chosen_steps(tmp_path, monkeypatch, capsys):
    """``--waves 50:52`` on a 2-task run of 40 steps: the window (steps 10 and 11 of task 1) is
    replayed from task 0's checkpoint; the FST starts when step 50 starts, ends when step 51
    ends, and holds exactly two training steps (two ``start`` and two ``done`` pulses).
    Slow: the traced model is a build of its own (over 5 minutes on two loaded cores)."""
    from spinapse.cosim.runner import fst_supported

    if not fst_supported():
        pytest.skip("Verilator's FST writer needs lz4.h (Debian: liblz4-dev)")
    monkeypatch.chdir(tmp_path)
    argv = ["cosim", "--no-progress", "--set", 'out="runs"', "--waves", "50:52"]
    for s in SETS:
        argv += ["--set", s.replace("tasks.count=3", "tasks.count=2")]
    assert main(argv) == 0
    assert "waveform of steps 50:52" in capsys.readouterr().out
    doc = json.loads((tmp_path / "runs" / "cosim" / "results.json").read_text())
    w = doc["waves"]
    assert w["window"] == [50, 52] and w["file"].endswith("dump.fst")
    ns, raw, names = _fst_times(w["file"])
    start, end = w["start_ns"], w["end_ns"]
    # Steps 0-49 of the replay are not in the file: it opens on the clock edge of step 50.
    assert start - 10 <= ns[0] <= start, (ns[0], start)
    assert end <= ns[-1] <= end + 20, (ns[-1], end)
    for name in ("start", "done"):
        var = names[f"bridge_system.{name}"]
        vals = [var.signal.value_at(t) for t in raw]
        # The trace opens on the edge where step 50's start is driven: it may show start high
        # in its first sample.
        pulses = int(vals[0] == 1) + sum(1 for a, b in zip(vals, vals[1:]) if a == 0 and b == 1)
        assert pulses == 2, (name, pulses)


ACCEPTANCE = [
    "tasks.count=5",
    "tasks.train_samples=1000",
    "tasks.epochs=1",
    "tasks.test_samples=2000",
]


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_five_tasks_device_mode_keeps_earlier_tasks_10_points_above_m0(tmp_path, monkeypatch):
    """The acceptance run of the README table: 784-64-10, device mode, card mtj_mi_stt, 5
    permuted tasks x 1000 steps (seed 0, device seed 1) on the RTL engine in Verilator. Mean
    accuracy on tasks 0-3 after task 4 at least 10 points above the same engine with m = 0 on
    an ideal array, and the final state bit-exact with the golden prediction."""
    monkeypatch.chdir(tmp_path)
    argv = ["cosim", "--no-progress", "--set", 'out="runs"']
    for s in ACCEPTANCE:
        argv += ["--set", s]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "runs" / "cosim" / "results.json").read_text())
    ours, base = doc["mean_earlier_after_last"], doc["baseline_m0_ideal"]["mean_earlier_after_last"]
    assert ours >= base + 0.10, (ours, base)
    cfg = load_cosim_config(None, ACCEPTANCE)
    data = task_data(cfg)
    gold = golden_prediction(
        cfg.rule(), "device", load_card(cfg.card), [d[0] for d in data], cfg.seed, cfg.device_seed
    )
    import torch

    last = torch.load(tmp_path / "runs" / "cosim" / "checkpoints" / "task4.pt", weights_only=False)
    assert compare(last, gold, "device") == []


def test_waves_and_stuck_sweep_options_refuse_bad_values(capsys):
    """Bad ``--waves`` and ``--stuck-sweep`` values are usage errors naming what is allowed."""
    with pytest.raises(SystemExit) as exc:
        main(["cosim", "--waves", "12:10"])
    assert exc.value.code == 2 and "0 <= A < B" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cosim", "--waves", "ten"])
    assert "A:B" in capsys.readouterr().err
    assert main(["cosim", "--stuck-sweep", "0,150"]) == 2
    assert "[0, 100] %" in capsys.readouterr().err
    assert main(["cosim", "--png", "x.png"]) == 2
    assert "--stuck-sweep" in capsys.readouterr().err


def test_stuck_sweep_writes_its_files_and_agrees_with_one_golden_run(tmp_path, capsys):
    """``--stuck-sweep 0,20`` on 784-16-10, 2 tasks x 20 steps (seeds 0 / 1): files written;
    20 % of the devices stuck (binomial sd 0.35 % of 12 704); the 20 % point's accuracies
    equal one golden prediction of both tasks with the same faults (the sweep continues its
    engine task by task)."""
    sets = ["network.hidden=16", "tasks.count=2", "tasks.train_samples=20", "tasks.epochs=1"]
    sets += ["tasks.test_samples=200", f'out="{tmp_path}"']
    argv = ["cosim", "--no-progress", "--stuck-sweep", "0,20", "--png", str(tmp_path / "f.png")]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    out = tmp_path / "cosim"
    doc = json.loads((out / "stuck_sweep.json").read_text())
    assert [p["stuck_fraction"] for p in doc["points"]] == [0.0, 0.2]
    for name in ("stuck_sweep.csv", "stuck_sweep.png"):
        assert (out / name).stat().st_size > 0
    assert (tmp_path / "f.png").stat().st_size > 0
    p20 = doc["points"][1]
    assert 0.19 < sum(p20["stuck_devices"]) / (784 * 16 + 16 * 10) < 0.21
    assert doc["points"][0]["stuck_devices"] == [0, 0] and p20["stuck_failures"][0] > 0
    from spinapse.cosim.physics_array import Faults

    cfg = load_cosim_config(None, sets)
    data = task_data(cfg)
    gold = golden_prediction(
        cfg.rule(),
        "device",
        load_card(cfg.card),
        [d[0] for d in data],
        cfg.seed,
        cfg.device_seed,
        faults=Faults(0.1, 0.1),
    )
    eng = gold["engine"]
    # The golden run keeps only the last thresholds: compare the last task's accuracy.
    xt, yt = data[-1][1]
    assert p20["acc_after_last"][-1] == float((eng.predict(xt) == yt).mean())
    assert p20["flips"] == [a.counts["flips"] for a in eng.arrays]
