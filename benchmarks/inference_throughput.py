"""Inference engine throughput: Verilator co-simulation against Amaranth's simulator, side by side.

The network is 784-256-256-10, trained 5 epochs on the 3000 embedded training digits (seed 0) and
exported to integers; the engine has the packaged default folding (PE 32/16/10, SIMD 98/64/4,
one 784-bit beat per image). Both simulators move whole images per Python call: Verilator under
cocotb (the testbench sleeps on handshake edges) and Amaranth's Python simulator (one ``set`` per
beat, ``tick().until(...)`` for the result). Both check every result against the integer model.

Reported, from one run: the test accuracy of the float model (binarized input, BatchNorm on the
training-set statistics) and of the integer model; images per second of each simulator
(simulation loop only; building and elaborating are shown apart), their ratio, measured cycles
per image against the ideal bound ``max_l(N_l * M_l / (PE_l * SIMD_l))`` (the slowest layer of
the pipeline; the default folding is balanced, so it also equals all XNOR operations over all
XNOR units).
Results: ``results/benchmarks/inference_throughput.json``.

Usage: ``.venv/bin/python benchmarks/inference_throughput.py [--images N] [--amaranth-images M]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from spinapse.cosim.digit_case import trained_digit_case
from spinapse.cosim.engine_cosim import run_engine_cosim
from spinapse.cosim.engine_load import decode_result, model_writes, pack_write
from spinapse.golden.integer_model.inference import accuracy_report
from spinapse.io import write_json
from spinapse.rtl.engine_config import default_engine_config
from spinapse.rtl.inference_engine import InferenceEngine


def amaranth_throughput(config, model, bits: np.ndarray) -> dict:
    """Run ``bits`` through the engine in Amaranth's simulator; check results; time the loop."""
    from amaranth.sim import Simulator

    t_build = time.perf_counter()
    dut = InferenceEngine(config)
    writes = [pack_write(config, *w) for w in model_writes(config, model)]
    images = [config.image_words(b) for b in bits]
    exp_cls, exp_scores = model.predict(bits)
    got, marks = [], {}

    async def tb(ctx):
        for w in writes:
            ctx.set(dut.write.payload.as_value(), w)
            ctx.set(dut.write.valid, 1)
            await ctx.tick().until(dut.write.ready)
        ctx.set(dut.write.valid, 0)
        ctx.set(dut.result.ready, 1)
        marks["start"] = time.perf_counter()
        for beats in images:
            for beat in beats:
                ctx.set(dut.image.payload, beat)
                ctx.set(dut.image.valid, 1)
                await ctx.tick().until(dut.image.ready)
            ctx.set(dut.image.valid, 0)
            await ctx.tick().until(dut.result.valid)
            got.append(decode_result(config, ctx.get(dut.result.payload.as_value())))
        marks["end"] = time.perf_counter()

    # Amaranth compiles each process into one Python function; the wide popcount trees of
    # the default folding nest deeper than CPython's default compile recursion limit.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    marks["built"] = time.perf_counter()
    sim.run()
    ok = all(c == ec and np.array_equal(s, es) for (c, s), ec, es in zip(got, exp_cls, exp_scores))
    wall = marks["end"] - marks["start"]
    return {
        "images": len(images),
        "wall_s": wall,
        "images_per_s": len(images) / wall,
        "setup_s": marks["built"] - t_build,
        "bit_exact": bool(ok and len(got) == len(images)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images through Verilator")
    parser.add_argument("--amaranth-images", type=int, default=20, help="images through Amaranth")
    parser.add_argument("--cxx-opt", default="-O2", help="C++ optimisation of the Verilator model")
    parser.add_argument("--out", default="results/benchmarks/inference_throughput.json")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 2000 or not 1 <= args.amaranth_images <= 2000:
        raise SystemExit("--images and --amaranth-images must be in [1, 2000]")
    torch.set_num_threads(1)

    case = trained_digit_case((256, 256), epochs=5, seed=0)
    config = default_engine_config()
    bits = case.test_bits

    t0 = time.perf_counter()
    ver = run_engine_cosim(
        config, [(case.integer, bits[: args.images])], tag="_bench", cxx_opt=args.cxx_opt
    )
    ver_total = time.perf_counter() - t0
    ver_ips = ver["images"] / ver["wall_s"]

    ama = amaranth_throughput(config, case.integer, bits[: args.amaranth_images])

    acc = accuracy_report(case.model, case.train_x, case.test_x, case.test_y)
    result = {
        "accuracy": acc,
        "network": "-".join(map(str, config.widths)),
        "pe": list(config.pe),
        "simd": list(config.simd),
        "xnor_ops_per_image": config.xnor_ops,
        "ideal_cycles_per_image": config.ideal_cycles,
        "balanced_cycles_per_image": config.balanced_cycles,
        "cxx_opt": args.cxx_opt,
        "verilator": {
            "images": ver["images"],
            "mismatches": len(ver["mismatches"]),
            "loop_s": ver["wall_s"],
            "images_per_s": ver_ips,
            "cycles_per_image": ver["cycles_per_image"],
            "build_and_run_s": ver_total,
        },
        "amaranth": ama,
        "speedup_verilator_over_amaranth": ver_ips / ama["images_per_s"],
        "cycles_ratio_to_ideal": ver["cycles_per_image"] / config.ideal_cycles,
    }
    write_json(args.out, result)
    v, a = result["verilator"], result["amaranth"]
    print(f"network {result['network']}  PE {config.pe}  SIMD {config.simd}")
    print(f"{'':28}{'Verilator+cocotb':>18}{'Amaranth sim':>16}")
    print(f"{'images simulated':28}{v['images']:>18}{a['images']:>16}")
    print(
        f"{'bit-exact vs integer model':28}{str(v['mismatches'] == 0):>18}{str(a['bit_exact']):>16}"
    )
    print(f"{'images / s (sim loop)':28}{v['images_per_s']:>18.1f}{a['images_per_s']:>16.2f}")
    setup = v["build_and_run_s"] - v["loop_s"]
    print(f"{'setup s (build/elaborate)':28}{setup:>18.1f}{a['setup_s']:>16.1f}")
    print(f"speedup Verilator / Amaranth: {result['speedup_verilator_over_amaranth']:.1f}x")
    print(
        f"cycles per image {v['cycles_per_image']:.1f}, ideal {config.ideal_cycles} "
        f"(ratio {result['cycles_ratio_to_ideal']:.3f})"
    )
    f_acc, i_acc = 100 * acc["float_accuracy"], 100 * acc["integer_accuracy"]
    print(
        f"test accuracy (2000 digits): float with binarized input {f_acc:.2f} %, "
        f"integer model {i_acc:.2f} % ({acc['difference_points']:+.2f} points)"
    )
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
