"""The task protocol, the runner, checkpoints and resume after a real kill."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from spinapse.cli import main
from spinapse.config import load_config
from spinapse.errors import UsageError
from spinapse.experiments.continual import run_continual, task_generator
from spinapse.experiments.experiment import build_learner, build_tasks, run_experiment

TINY = [
    "model.hidden=[48]",
    "train.epochs=2",
    "tasks.count=3",
    "data.n_train=1000",
    "method.meta=3.0",
]


def tiny_config(tmp_path, *extra):
    return load_config(None, [*TINY, f'results_dir="{tmp_path.as_posix()}"', *extra])


def test_task_generator_depends_on_seed_and_task_only():
    a = torch.randperm(50, generator=task_generator(4, 2))
    assert torch.equal(a, torch.randperm(50, generator=task_generator(4, 2)))
    assert not torch.equal(a, torch.randperm(50, generator=task_generator(4, 3)))
    assert not torch.equal(a, torch.randperm(50, generator=task_generator(5, 2)))


def test_runner_matrix_and_task_dependent_bn(tmp_path):
    cfg = tiny_config(tmp_path, "train.eval_every_epoch=true")
    tasks = build_tasks(cfg)
    learner = build_learner(cfg, tasks)
    result = run_continual(
        tasks, learner, cfg.train.epochs, cfg.seed, eval_every_epoch=True, progress=False
    )
    assert len(result.acc) == 3 and all(len(r) == 3 for r in result.acc)
    assert [(p["task"], p["epoch"]) for p in result.curve] == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    assert result.curve[-1]["acc"] == result.acc[-1]
    assert [len(x) for x in result.loss] == [2, 2, 2]
    # Each finished task was tested with its own BatchNorm copy; the live BN is left unchanged.
    assert len(learner.bn_copies) == 3
    live = learner.model.bn_state()
    x, y = tasks[0].test()
    learner.model.load_bn_state(learner.bn_copies[0])
    with torch.no_grad():
        learner.model.eval()
        by_hand = int((learner.model(x[:1000]).argmax(1) == y[:1000]).sum()) / 1000
    learner.model.load_bn_state(live)
    assert learner.evaluate(0, x[:1000], y[:1000]) == by_hand
    for a, b in zip(learner.model.bn_state(), live):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # The task just learned is well above chance (10 %) on 1000 training digits: seed 0, 2
    # epochs of a 784-48-10 BNN reach about 70 %; 40 % leaves a wide margin.
    assert result.acc[2][2] > 0.40


def test_fresh_optimiser_per_task(tmp_path):
    cfg = tiny_config(tmp_path)
    tasks = build_tasks(cfg)
    learner = build_learner(cfg, tasks)
    learner.start_task(0)
    learner.train_epoch(*tasks[0].train(), task_generator(0, 0))
    first = learner.optimizer
    assert first.state  # moments were built
    learner.start_task(1)
    assert learner.optimizer is not first and not learner.optimizer.state
    assert [g["meta"] for g in learner.optimizer.param_groups] == [3.0, 3.0, 0.0]


KILLER = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    from spinapse.config import load_config
    from spinapse.experiments.experiment import run_experiment
    cfg = load_config(None, sys.argv[2:])
    def kill(i, result):
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    run_experiment(cfg, "m=3", cfg.out_dir(), progress=False, after_task=kill)
""")


def test_resume_after_kill_gives_the_same_json(tmp_path, capsys):
    overrides = [*TINY, f'results_dir="{tmp_path.as_posix()}"']
    args = ["train", "--no-progress", *[a for o in overrides for a in ("--set", o)]]
    assert main(args) == 0
    out = tmp_path / "default"
    uninterrupted = (out / "results.json").read_bytes()
    csv_text = (out / "accuracy.csv").read_text()
    assert len(csv_text.splitlines()) == 1 + 9
    for f in out.rglob("*"):
        if f.is_file():
            f.unlink()
    # A real kill (SIGKILL) right after task 1 was checkpointed.
    proc = subprocess.run([sys.executable, "-c", KILLER, "x", *overrides], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    ckpt = out / "checkpoints" / "m=3"
    assert sorted(p.name for p in ckpt.iterdir()) == ["task-0.pt", "task-1.pt"]
    assert not (out / "results.json").exists()
    stamps = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in ckpt.iterdir()}
    assert main([*args, "--resume"]) == 0
    assert (out / "results.json").read_bytes() == uninterrupted
    # Finished tasks were not redone: their checkpoints are untouched.
    for name, (mtime, data) in stamps.items():
        assert (ckpt / name).stat().st_mtime_ns == mtime and (ckpt / name).read_bytes() == data
    assert (ckpt / "task-2.pt").exists()
    doc = json.loads(uninterrupted)
    assert doc["config"]["train"]["epochs"] == 2 and list(doc["runs"]) == ["m=3"]
    assert "seconds" not in uninterrupted.decode()


def test_resume_refuses_another_configuration(tmp_path):
    cfg = tiny_config(tmp_path, "tasks.count=2")
    run_experiment(cfg, "m=3", cfg.out_dir(), progress=False)
    other = tiny_config(tmp_path, "tasks.count=2", "train.lr=0.01")
    # The folder belongs to the first configuration: refused before any work, with or without
    # --resume, naming the field that differs.
    for resume in (True, False):
        with pytest.raises(
            UsageError, match=r"another configuration \(train\.lr: 0\.005 -> 0\.01\)"
        ):
            run_experiment(other, "m=3", other.out_dir(), resume=resume, progress=False)
    # The checkpoints themselves still refuse a resume from another configuration.
    with pytest.raises(ValueError, match="different configuration"):
        run_experiment(other, "m=3", other.out_dir(), resume=True, overwrite=True, progress=False)
    # --overwrite: the old checkpoints are cleared and the run starts afresh.
    fresh = run_experiment(other, "m=3", other.out_dir(), overwrite=True, progress=False)
    assert len(fresh.acc) == 2


def test_runner_validation(tmp_path):
    cfg = tiny_config(tmp_path)
    tasks = build_tasks(cfg)
    learner = build_learner(cfg, tasks)
    with pytest.raises(ValueError, match="train.epochs"):
        run_continual(tasks, learner, 0, 0, progress=False)
    with pytest.raises(ValueError, match="empty"):
        run_continual([], learner, 1, 0, progress=False)
    with pytest.raises(ValueError, match="method.meta has 3 values but the network has 2"):
        build_learner(cfg, tasks, meta=[1.0, 2.0, 3.0])


def test_resume_without_checkpoints_starts_from_zero(tmp_path):
    cfg = tiny_config(tmp_path, "tasks.count=1")
    result = run_experiment(cfg, "m=3", cfg.out_dir(), resume=True, progress=False)
    assert len(result.acc) == 1
    assert os.path.exists(cfg.out_dir() / "checkpoints" / "m=3" / "task-0.pt")
