"""Build, run and check a co-simulation of on-chip training against the integer golden model.

:func:`run_training_cosim` trains :class:`spinapse.golden.integer_model.learning.IntegerEngine` on
real digits (the embedded training set in a seeded order, pooled and thermometer-coded to the
rule's inputs by :func:`input_bits`), writes the case file of
:mod:`spinapse.cosim.tb_training`, converts :class:`spinapse.rtl.training_system.TrainingSystem`
with the same initial ``W_h``, f_meta table and array seeds to Verilog, and runs the testbench on
Verilator. The testbench itself asserts bit-exactness; the returned dict gives its measurements.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from spinapse.cosim.runner import run_cocotb, sim_build_root
from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, array_lane_seeds
from spinapse.rtl.hidden_state_array import pack_signed
from spinapse.rtl.training_engine import BIAS_BITS, THR_BITS, dev_bits
from spinapse.rtl.training_system import TrainingSystem
from spinapse.rtl.verilog import convert


def digit_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training digits in a seeded order: pixels float32 ``[n, 784]`` in [0, 1] and
    labels int64 ``[n]`` (embedded digits, default split; ``numpy.random.default_rng(seed)``).

    Raises
    ------
    ValueError
        If ``n`` is not in ``[1, 3000]``.
    """
    from spinapse.data.digits import load_digits

    if not 1 <= n <= 3000:
        raise ValueError(f"n must be in [1, 3000], got {n}")
    ds = load_digits()
    order = np.random.default_rng(seed).permutation(ds.x_train.shape[0])[:n]
    return ds.x_train.numpy()[order], ds.y_train.numpy()[order]


def digit_steps(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits of :func:`digit_pixels` as bits bool ``[n, 784]`` (pixel >= 0.5), and labels.

    Raises
    ------
    ValueError
        If ``n`` is not in ``[1, 3000]``.
    """
    xs, ys = digit_pixels(n, seed)
    return xs >= 0.5, ys


def input_bits(pixels: np.ndarray, rule: IntegerRule) -> np.ndarray:
    """The engine's input bits for digit pixels: float ``[n, 784]`` in [0, 1] max-pooled to
    ``rule.n_in / rule.in_levels`` pixels (``k x k`` blocks, ``k = 28 / side``: 784, 196 =
    14 x 14, 49 = 7 x 7 or 16 = 4 x 4 pixels; short builds on real digits), then the
    thermometer code of ``rule.in_levels`` (``golden.integer_model.learning.encode_pixels``),
    bool ``[n, rule.n_in]``. With ``in_levels = 1`` this is the OR-pooling of the
    ``pixel >= 0.5`` bits (the max of a block is >= 0.5 exactly where one of its pixels is).

    Raises
    ------
    ValueError
        If ``rule.n_in / rule.in_levels`` is not one of 784, 196, 49, 16.
    """
    from spinapse.golden.integer_model.learning import encode_pixels

    n_pix = rule.n_in // rule.in_levels
    sides = {784: 28, 196: 14, 49: 7, 16: 4}
    if n_pix not in sides:
        raise ValueError(
            f"n_in / in_levels must be one of {sorted(sides)} for digit inputs, got "
            f"{rule.n_in} / {rule.in_levels}"
        )
    k = 28 // sides[n_pix]
    blocks = np.asarray(pixels, dtype=np.float32).reshape(-1, 28 // k, k, 28 // k, k)
    return encode_pixels(blocks.max(axis=(2, 4)).reshape(-1, n_pix), rule.in_levels)


def _bits_word(bits) -> int:
    return sum(1 << k for k, b in enumerate(bits) if b)


def _rtl_sources_digest() -> str:
    """Digest of the RTL sources the training system is built from (cache key part)."""
    import spinapse.rtl as rtl

    h = hashlib.sha256()
    for path in sorted(Path(rtl.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def training_verilog(rule: IntegerRule, mode: str, init_wh, seeds) -> str:
    """Verilog of the :class:`TrainingSystem` for these parameters, cached on disk.

    Converting the 784-input system through Yosys takes tens of seconds, so the text is kept in
    ``<sim_build>/verilog_cache/<digest>.v`` keyed by the parameters and the RTL sources.
    """
    key = hashlib.sha256(
        json.dumps(
            [
                rule.as_dict(),
                mode,
                [np.asarray(w).tolist() for w in init_wh],
                seeds,
                _rtl_sources_digest(),
            ]
        ).encode()
    ).hexdigest()[:24]
    path = sim_build_root() / "verilog_cache" / f"training_{mode}_{key}.v"
    if path.exists():
        return path.read_text(encoding="utf-8")
    system = TrainingSystem(rule, mode, rule.tables(), init_wh, seeds)
    text = convert(system, "training_system")
    from spinapse.io import write_text

    write_text(path, text)
    return text


def run_training_cosim(
    rule: IntegerRule,
    mode: str,
    steps: int,
    p_success: int = 256,
    seed: int = 0,
    array_seed: int = 1,
) -> dict:
    """Train ``steps`` steps in the golden model and in Verilator; return the testbench's results.

    Parameters
    ----------
    rule : IntegerRule
        Any ``n_hidden_layers``; ``n_in / in_levels`` one of 784, 196, 49, 16 (digits pooled
        and coded by :func:`input_bits`).
    mode : str
        ``"digital"`` or ``"device"``.
    steps : int
        Training steps (batch 1), in [1, 3000].
    p_success : int
        Single-pulse write success of the binary arrays in 1/256 (digital mode).
    seed, array_seed : int
        Seed of the initial ``W_h`` and of the data order; seed of the arrays' lane draws.

    Returns
    -------
    dict
        ``steps``, ``cycles_per_step``, ``wall_s``, ``counters`` (RTL), ``mismatches`` (empty),
        ``golden_counters``, ``train_accuracy`` (fraction of steps predicted right).

    Raises
    ------
    AssertionError
        If the RTL differs from the golden model anywhere (raised by the testbench run).
    ValueError
        If ``p_success`` is not 256 in device mode (the hidden-state array has no write
        probability) or is outside [0, 256], or ``rule.n_in / rule.in_levels`` is not a
        pooled digit size.
    """
    if not 0 <= p_success <= 256 or (mode == "device" and p_success != 256):
        raise ValueError(f"p_success must be in [0, 256] (256 in device mode), got {p_success}")
    pixels, ys = digit_pixels(steps, seed)
    xs = input_bits(pixels, rule)
    gold = IntegerEngine(rule, mode, seed=seed, p_success=p_success, array_seed=array_seed)
    init = [w.tolist() for w in gold.w_h]
    seeds = array_lane_seeds(rule, array_seed)
    shapes = rule.layer_shapes()
    preds = [gold.step(x, int(y)) for x, y in zip(xs, ys)]
    final = {
        "writes": gold.counters.writes,
        "retries": gold.counters.retries,
        "failures": gold.counters.failures,
    }
    for k in range(len(shapes)):
        final[f"thr{k + 1}"] = pack_signed(gold.thr[k], THR_BITS)
        final[f"wh{k + 1}"] = [pack_signed(r, rule.wh_bits) for r in gold.w_h[k]]
        final[f"acc{k + 1}"] = [pack_signed(r, rule.acc_bits) for r in gold.acc[k]]
        final[f"bits{k + 1}"] = [_bits_word(r) for r in gold.w_b()[k]]
    for k in range(len(shapes)) if rule.bias_shift else ():
        final[f"bias{k + 1}"] = pack_signed(gold.bias[k], BIAS_BITS)
    for k in range(len(shapes) - 1) if rule.dev_shift else ():
        final[f"dev{k + 1}"] = pack_signed(gold.dev[k], dev_bits(rule))
    # One step: forward reads, then every row once; each write attempt costs a few cycles more;
    # the backward pass of each hidden-to-hidden layer reads n_hidden rows of its memory.
    rows = sum(r for r, _ in shapes) + rule.n_hidden * (len(shapes) - 2)
    budget = 8 * rows * (rule.retry_limit + 2) + 64
    doc = {
        "x": [_bits_word(x) for x in xs],
        "label": [int(y) for y in ys],
        "pred": preds,
        "rows": [r for r, _ in shapes],
        "final": final,
        "step_timeout_cycles": budget,
        "p_success": p_success if mode == "digital" else None,
    }
    verilog = training_verilog(rule, mode, init, seeds)
    with tempfile.TemporaryDirectory() as tmp:
        case_path, out_path = Path(tmp) / "case.json", Path(tmp) / "out.json"
        from spinapse.cosim.tb_training import write_case

        write_case(case_path, doc)
        run_cocotb(
            name=f"training_{mode}_" + "-".join(str(r) for r, _ in shapes) + f"-{rule.n_out}",
            verilog=verilog,
            toplevel="training_system",
            test_module="spinapse.cosim.tb_training",
            extra_env={"SPINAPSE_TB_CASE": str(case_path), "SPINAPSE_TB_OUT": str(out_path)},
        )
        out = json.loads(out_path.read_text(encoding="utf-8"))
    out["golden_counters"] = {
        "writes": gold.counters.writes,
        "retries": gold.counters.retries,
        "failures": gold.counters.failures,
    }
    out["train_accuracy"] = float(np.mean(np.asarray(preds) == ys))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: one co-simulation run; prints its measurements as JSON (and ``--out``),
    then a one-line verdict."""
    import argparse
    import dataclasses

    from spinapse.io import write_json

    p = argparse.ArgumentParser(description="on-chip training co-simulation vs the golden model")
    p.add_argument("--mode", choices=("digital", "device"), default="digital")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--p-success", type=int, default=256, help="write success in 1/256")
    p.add_argument("--hidden", type=int, default=32, help="neurons of every hidden layer")
    p.add_argument(
        "--hidden-layers", type=int, default=1, help="hidden layers in [1, 4] (2: 784-H-H-10)"
    )
    p.add_argument(
        "--inputs", type=int, default=784, choices=(784, 196, 49, 16), help="pooled digit inputs"
    )
    p.add_argument(
        "--in-levels",
        type=int,
        default=1,
        choices=range(1, 9),
        metavar="{1..8}",
        help="thermometer bits per pooled pixel (n_in = inputs x levels; default 1)",
    )
    p.add_argument("--out", help="also write the measurements to this JSON file")
    args = p.parse_args(argv)
    rule = dataclasses.replace(
        IntegerRule(),
        n_in=args.inputs * args.in_levels,
        in_levels=args.in_levels,
        n_hidden=args.hidden,
        n_hidden_layers=args.hidden_layers,
    )
    out = run_training_cosim(rule, args.mode, args.steps, p_success=args.p_success)
    out["settings"] = {**vars(args), "rule": rule.as_dict()}
    if args.out:
        write_json(args.out, out)
    print(json.dumps(out, indent=2, sort_keys=True))
    print(verdict(out, args.mode, args.steps))
    return 0


def verdict(out: dict, mode: str, steps: int) -> str:
    """The one line a reader looks for: ``PASS`` when the RTL matched the integer golden model
    bit for bit (the testbench checks every step and the final state) and its write counters
    equal the golden model's, else ``FAIL`` with what differed."""
    rtl, gold = out.get("counters", {}), out.get("golden_counters", {})
    counts = ", ".join(f"{k} {rtl.get(k)}" for k in ("writes", "retries", "failures"))
    bad = list(out.get("mismatches", [])) + [
        f"{k}: rtl {rtl.get(k)}, golden {v}" for k, v in gold.items() if rtl.get(k) != v
    ]
    if bad:
        return f"FAIL: {mode} mode, {steps} steps: " + "; ".join(bad)
    return (
        f"PASS: {mode} mode, {steps} steps: RTL bit-exact against the integer golden model "
        f"(W_h, M, W_b, thresholds, predictions); {counts} as in the golden model; "
        f"{out.get('cycles_per_step', 0):.0f} cycles per step"
    )


if __name__ == "__main__":
    raise SystemExit(main())
