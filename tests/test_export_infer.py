"""``spinapse export`` and ``spinapse infer`` on a real (tiny) ``spinapse train`` result.

A 784-32-10 network (the iCEBreaker's engine) trained 1 epoch on one permuted-digits task, seed 0.
The command stream written by ``export`` is sent byte for byte to the Verilator UART system and
must load an engine whose predictions equal the exported integer model's; ``infer --target sim``
must report zero differing predictions and the golden model's accuracy.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from spinapse.boards.driver import EngineDriver
from spinapse.boards.targets import board
from spinapse.cli import main
from spinapse.cosim.uart_sim import SimTransport, build_uart_sim
from spinapse.golden.integer_model.inference import IntegerBNN, IntegerLayer


def tiny_run(tmp_path_factory) -> str:
    """The tiny run, trained once per pytest session (a folder under the session's base
    temporary directory; other test modules import this)."""
    root = tmp_path_factory.getbasetemp() / "tiny-train"
    if not (root / "tiny" / "results.json").is_file():
        argv = ["train", "--no-progress", "--set", "model.hidden=[32]", "--set", "train.epochs=1"]
        argv += ["--set", "tasks.count=1", "--set", f'results_dir="{root}"']
        assert main([*argv, "--set", 'name="tiny"']) == 0
    return str(root / "tiny")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def _load_npz(path) -> tuple[IntegerBNN, np.ndarray]:
    z = np.load(path)
    hidden = IntegerLayer(
        z["layer0_weights"], threshold=z["layer0_threshold"], flip=z["layer0_flip"]
    )
    out = IntegerLayer(
        z["layer1_weights"],
        scale=z["layer1_scale"],
        offset=z["layer1_offset"],
        frac_bits=int(z["layer1_frac_bits"]),
    )
    return IntegerBNN((hidden, out)), z["test_bits"]


def test_export_stream_loads_the_engine(run_dir, tmp_path):
    out = tmp_path / "engine"
    assert main(["export", run_dir, "--board", "icebreaker", "-o", str(out)]) == 0
    meta = json.loads((out / "m_4.5_task0.json").read_text())
    stream = (out / "m_4.5_task0.bin").read_bytes()
    assert meta["command_stream_bytes"] == len(stream)
    model, bits = _load_npz(out / "m_4.5_task0.npz")
    config = board("icebreaker").engine
    with SimTransport(build_uart_sim(config, input_copy=False), timeout_s=120) as link:
        link.write(stream)
        assert link.read(meta["writes"]) == b"W" * meta["writes"]
        cls, scores = EngineDriver(link, config).infer(bits[:200])
    want_cls, want_scores = model.predict(bits[:200])
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(scores, want_scores)


def test_infer_on_sim_matches_golden(run_dir, tmp_path, capsys):
    argv = ["infer", "--model", run_dir, "--board", "icebreaker", "--target", "sim"]
    assert main([*argv, "--limit", "300", "--no-progress", "-o", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "infer.json").read_text())
    assert rec["images"] == 300 and rec["differing_predictions"] == 0
    assert rec["engine_accuracy"] == rec["golden_accuracy"] > 0.5
    assert rec["counters"]["images"] == 300
    assert "0 predictions differ" in capsys.readouterr().out


def test_export_refuses_other_widths(run_dir, capsys):
    assert main(["export", run_dir, "--board", "ulx3s-85f"]) == 2
    err = capsys.readouterr().err
    assert "784-32-10" in err and "784-256-256-10" in err


def test_export_refuses_checkpoint_before_batchnorm_statistics(run_dir, tmp_path, capsys):
    """A result folder written before BatchNorm stored population statistics (its BatchNorm
    copies hold only gamma and beta) stops with a UsageError saying what to do, not a torch
    error."""
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    (ckpt,) = (old / "checkpoints").glob("*/task-0.pt")
    doc = torch.load(ckpt, weights_only=True)
    learner = doc["learner"]
    learner["bn_copies"] = [
        [{k: v for k, v in layer.items() if k in ("weight", "bias")} for layer in copy]
        for copy in learner["bn_copies"]
    ]
    learner["model"] = {
        k: v
        for k, v in learner["model"].items()
        if not k.startswith("bns.") or k.endswith((".weight", ".bias"))
    }
    torch.save(doc, ckpt)
    assert main(["export", str(old), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert "before BatchNorm stored population statistics" in err
    assert "train it again" in err and "Traceback" not in err
