"""The training host script (``spinapse session``) on the simulation target and the golden model.

The trained model is the tiny 784-32-10 run of tests/test_export_infer.py (1 epoch, one
permuted-digits task, seed 0). The loaded hidden layer is checked against the integer inference
model bit for bit; the session's records on ``sim`` (the training system's RTL on Verilator,
through its UART pins) and ``golden`` (the integer golden model) must be identical in every
field but the wall time (the golden model's busy cycles are the RTL's cycle model). Predictions
on ``golden`` are also checked against a fresh
:class:`~spinapse.golden.integer_model.learning.IntegerEngine`, outside the transport.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_export_infer import tiny_run  # tests/ is on sys.path under pytest

from spinapse.boards.driver import ProtocolError
from spinapse.boards.training_driver import TrainingDriver
from spinapse.cli import main
from spinapse.cosim.golden_link import GoldenTransport
from spinapse.experiments.engine_export import load_trained_run
from spinapse.experiments.host_session import compare_records, session_data
from spinapse.experiments.training_load import load_training_model
from spinapse.golden.integer_model.array_models import (
    BinaryArrayModel,
    HiddenStateArrayModel,
    lane_seeds,
)
from spinapse.golden.integer_model.inference import export_integer
from spinapse.golden.integer_model.learning import IntegerEngine
from spinapse.rtl.uart_training import model_id


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model(run_dir):
    return load_training_model(run_dir)


def _seeds(rule, array_seed=1):
    return [lane_seeds(array_seed * 2 + k, n) for k, n in enumerate((rule.n_hidden, rule.n_out))]


def test_loaded_hidden_layer_equals_inference_model(run_dir, model):
    """W_b is the sign of the float hidden weights (negated where BatchNorm's gamma < 0), and
    the engine's hidden bits ``(a << thr_frac) - T1 >= 0`` equal the integer inference model's on
    all 2000 test digits."""
    loaded = load_trained_run(run_dir)
    integer = export_integer(loaded.model, loaded.x_train)
    w1 = loaded.model.linears[0].weight.detach().numpy().T >= 0
    flip = integer.layers[0].flip.astype(bool)
    np.testing.assert_array_equal(model.init_wh[0] >= 0, w1 ^ flip[None, :])
    w2 = loaded.model.linears[1].weight.detach().numpy().T >= 0
    np.testing.assert_array_equal(model.init_wh[1] >= 0, w2)
    x = model.test_bits.astype(np.int64)
    a1 = x @ np.where(model.init_wh[0] >= 0, 1, -1)
    h = ((a1 << model.rule.thr_frac) - model.thr1[None, :]) >= 0
    np.testing.assert_array_equal(h, integer.layers[0].forward(model.test_bits).astype(bool))
    assert model.flipped == int(flip.sum())


def test_driver_checks_the_model_identifier(model):
    """identify() refuses a board that carries another model, naming both identifiers."""
    rule = model.rule
    mid = model_id(rule, "digital", model.init_wh)
    link = GoldenTransport(rule, model.init_wh, _seeds(rule), mid)
    with pytest.raises(ProtocolError, match=f"{mid:08x}.*{mid ^ 1:08x}"):
        TrainingDriver(link, rule, "digital", mid ^ 1).identify()


def test_session_refuses_unknown_target(run_dir, capsys):
    assert main(["session", "--model", run_dir, "--target", "usb"]) == 2
    assert "allowed 'golden', 'sim' or 'serial:PORT'" in capsys.readouterr().err


def _golden_predictions(model, images, steps, p_success, mode="digital"):
    """Inference and training predictions of the session, from a fresh IntegerEngine."""
    rule = model.rule
    if mode == "digital":
        arrays = [
            BinaryArrayModel(w >= 0, p_success, s) for w, s in zip(model.init_wh, _seeds(rule))
        ]
    else:
        arrays = [
            HiddenStateArrayModel(w, rule.wh_bits, t, rule.index_shift, s)
            for w, t, s in zip(model.init_wh, rule.tables(), _seeds(rule))
        ]
    eng = IntegerEngine(rule, mode, arrays=arrays)
    if mode == "digital":
        for k in (0, 1):
            eng.w_h[k][...] = model.init_wh[k]
    eng.thr = [model.thr1.copy(), model.thr2.copy()]
    test_x, _, train_x, train_y = session_data(model, images, steps, 0)
    inf = eng.predict(test_x.astype(bool))
    tr = [eng.step(x.astype(bool), int(y)) for x, y in zip(train_x, train_y)]
    return inf.tolist(), tr, eng.counters


def _session(run_dir, out, images, steps, p_success, state, mode="digital"):
    argv = ["session", "--model", run_dir, "--target", "sim", "--no-progress", "-o", str(out)]
    argv += ["--mode", mode]
    argv += ["--images", str(images), "--steps", str(steps), "--p-success", str(p_success)]
    assert main(argv + (["--state"] if state else [])) == 0
    sim = json.loads((out / "session-sim.json").read_text())
    gold = json.loads((out / "session-golden.json").read_text())
    return sim, gold


def _check(model, sim, gold, images, steps, p_success, mode="digital"):
    assert compare_records(sim, gold) == []
    inf, tr, counters = _golden_predictions(model, images, steps, p_success, mode)
    assert gold["inference"]["predictions"] == inf and gold["training"]["predictions"] == tr
    c = sim["counters"]
    assert (c["steps"], c["inferences"], c["framing_errors"], c["overruns"]) == (
        steps,
        images,
        0,
        0,
    )
    assert (c["writes"], c["retries"], c["failures"]) == (
        counters.writes,
        counters.retries,
        counters.failures,
    )
    # Busy cycles: the RTL's count equals the golden transport's cycle model, and the part of
    # it that does not depend on writes is counted here by hand: one row per cycle in the
    # forward pass (+ 6: close each layer, registered argmax, done) and, in a training step,
    # again in each layer's update sweep (+ 3 per layer: start, first read, done; + 1 backward).
    assert c["busy_cycles"] == gold["counters"]["busy_cycles"]
    n = model.rule.n_in + model.rule.n_hidden
    assert c["busy_cycles"] >= images * (n + 6) + steps * (2 * n + 13) + model.rule.n_in + 3
    assert sim["thresholds_loaded"] and sim["target"] == "sim"


def test_session_on_sim_equals_golden(run_dir, model, tmp_path, capsys):
    """200 digits, 20 steps with stochastic writes (200/256: write-verify retries), every row
    read back: the simulation's record equals the golden model's."""
    sim, gold = _session(run_dir, tmp_path, 200, 20, 200, state=True)
    _check(model, sim, gold, 200, 20, 200)
    assert sim["counters"]["retries"] > 0 and sim["state_digest"] is not None
    assert "identical to the golden model" in capsys.readouterr().out


@pytest.mark.slow
def test_full_session_on_sim_equals_golden(run_dir, model, tmp_path):
    """The acceptance run: 2000 test digits, 100 training steps, counters (ideal arrays, then
    stochastic writes 200/256), state read back."""
    for p in (256, 200):
        out = tmp_path / f"p{p}"
        sim, gold = _session(run_dir, out, 2000, 100, p, state=True)
        _check(model, sim, gold, 2000, 100, p)


@pytest.mark.slow
def test_full_session_in_device_mode_on_sim_equals_golden(run_dir, model, tmp_path):
    """The same in device mode: W_h as the hidden state of the arrays, gate pulses with the
    f_meta probability (seeded lane draws mirrored by HiddenStateArrayModel)."""
    sim, gold = _session(run_dir, tmp_path, 2000, 100, 256, state=True, mode="device")
    _check(model, sim, gold, 2000, 100, 256, mode="device")
    assert sim["engine"].endswith("device") and sim["counters"]["writes"] > 0


def test_folded_thresholds_keep_flipped_neurons_exact():
    """A random 784-24-10 integer model with about half its hidden neurons flipped (negative
    gamma): after quantize_hidden, fold_thresholds and negate_columns, the engine's hidden bits
    equal the inference model's on 500 random images, and the output ranking is exact when every
    class has the same scale A (seed 81)."""
    import dataclasses

    from spinapse.experiments.training_load import (
        fold_thresholds,
        negate_columns,
        quantize_hidden,
    )
    from spinapse.golden.integer_model.inference import IntegerBNN, IntegerLayer
    from spinapse.golden.integer_model.learning import IntegerRule

    rng = np.random.default_rng(81)
    rule = dataclasses.replace(IntegerRule(), n_hidden=24)
    w1 = rng.normal(0, 0.02, (784, 24))
    w1[:5, 0] = 0.0  # zeros: sign +1, and negated to -1
    w_h = quantize_hidden(w1, rule)
    np.testing.assert_array_equal(w_h >= 0, w1 >= 0)
    hidden = IntegerLayer(
        (w1.T >= 0).astype(np.uint8),
        threshold=rng.integers(-60, 60, 24),
        flip=(rng.random(24) < 0.5).astype(np.uint8),
    )
    w2 = rng.integers(0, 2, (10, 24)).astype(np.uint8)
    out = IntegerLayer(w2, scale=np.full(10, 96), offset=rng.integers(-3000, 3000, 10), frac_bits=4)
    integer = IntegerBNN((hidden, out))
    thr1, thr2, flip = fold_thresholds(integer, w_h >= 0, rule)
    assert flip.sum() >= 6
    w_h = negate_columns(w_h, flip, rule)
    x = rng.integers(0, 2, (500, 784)).astype(np.uint8)
    a1 = x.astype(np.int64) @ np.where(w_h >= 0, 1, -1)
    h = ((a1 << rule.thr_frac) - thr1[None, :]) >= 0
    np.testing.assert_array_equal(h, hidden.forward(x).astype(bool))
    # Output: with one common scale the ranking is kept up to the rounding of B / A.
    dot2 = np.where(h, 1, -1) @ np.where(w2.T, 1, -1)
    c2 = (dot2 << rule.thr_frac) - thr2[None, :]
    exact = out.scale[None, :] * dot2 + out.offset[None, :]
    assert np.mean(np.argmax(c2, axis=1) == np.argmax(exact, axis=1)) > 0.97


def test_session_over_a_serial_port_url(run_dir, model, tmp_path, capsys):
    """``--target serial:socket://HOST:PORT``: pyserial's network port to a stand-in board (the
    golden model behind protocol 2 on a local TCP socket). The serial path of the host script
    (SerialTransport, timeouts, the model check) runs end to end, and its record equals the
    golden model's run that follows it."""
    import socket
    import threading

    rule = model.rule
    mid = model_id(rule, "digital", model.init_wh)
    board = GoldenTransport(rule, model.init_wh, _seeds(rule), mid)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(4096):
                board.write(data)
                conn.sendall(board.read(board.available()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    argv = ["session", "--model", run_dir, "--target", f"serial:socket://127.0.0.1:{port}"]
    argv += ["--images", "100", "--steps", "10", "--no-progress", "-o", str(tmp_path)]
    try:
        assert main(argv) == 0
    finally:
        server.close()
    out = capsys.readouterr().out
    assert "identical to the golden model" in out
    rec = json.loads((tmp_path / "session-serial.json").read_text())
    assert rec["counters"]["steps"] == 10 and rec["counters"]["inferences"] == 100
