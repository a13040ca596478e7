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
