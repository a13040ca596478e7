"""Small RTL blocks in Amaranth's simulator against direct references, and folding rules.

References are written independently of the code under test: popcounts with Python's
``int.bit_count``, thresholds and scores with plain integer arithmetic, argmax with ``list.index``.
Random vectors use ``numpy.random.default_rng`` with the seeds given in each test.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from spinapse.rtl.argmax import Argmax
from spinapse.rtl.folding import EngineConfig, LayerFolding
from spinapse.rtl.inference_engine import InferenceEngine
from spinapse.rtl.score import Score
from spinapse.rtl.threshold import Threshold
from spinapse.rtl.xnor_popcount import XnorPopcount


def _run_comb(dut, body) -> None:
    sim = Simulator(dut)

    async def tb(ctx):
        await body(ctx)

    sim.add_testbench(tb)
    sim.run()


def test_xnor_popcount_matches_bit_count():
    pe, simd = 3, 37
    dut = XnorPopcount(pe, simd)
    rng = np.random.default_rng(1)
    cases = [(0, 0), ((1 << simd) - 1, 0), (0, (1 << (pe * simd)) - 1)]
    cases += [
        (int(rng.integers(0, 1 << 62)) << 1, int(rng.integers(0, 1 << 62))) for _ in range(40)
    ]

    async def body(ctx):
        for x, w in cases:
            x &= (1 << simd) - 1
            w &= (1 << (pe * simd)) - 1
            ctx.set(dut.x, x)
            ctx.set(dut.w, w)
            for j in range(pe):
                wj = (w >> (j * simd)) & ((1 << simd) - 1)
                expected = simd - (x ^ wj).bit_count()
                assert ctx.get(dut.count[j]) == expected

    _run_comb(dut, body)


def test_threshold_all_counts_both_flips():
    n = 9  # popcounts 0..9, thresholds 0..10
    fold = LayerFolding(n, 2, 2, n)
    dut = Threshold(2, fold.count_width, fold.threshold_width)

    async def body(ctx):
        for t in range(n + 2):
            for flip in (0, 1):
                for count in range(n + 1):
                    ctx.set(dut.count[0], count)
                    ctx.set(dut.param[0].t, t)
                    ctx.set(dut.param[0].flip, flip)
                    ctx.set(dut.count[1], n - count)
                    ctx.set(dut.param[1].t, t)
                    ctx.set(dut.param[1].flip, 1 - flip)
                    bits = ctx.get(dut.bits)
                    assert bits & 1 == int(count >= t) ^ flip
                    assert bits >> 1 == int(n - count >= t) ^ (1 - flip)

    _run_comb(dut, body)


def test_score_extremes_and_random():
    n = 64
    dut = Score(2, n)
    rng = np.random.default_rng(2)
    cases = [(0, -(2**15), -(2**31)), (n, -(2**15), -(2**31)), (n, 2**15 - 1, 2**31 - 1)]
    cases += [(0, 2**15 - 1, 2**31 - 1), (n // 2, 123, -456)]
    cases += [
        (
            int(rng.integers(0, n + 1)),
            int(rng.integers(-(2**15), 2**15)),
            int(rng.integers(-(2**31), 2**31)),
        )
        for _ in range(50)
    ]

    async def body(ctx):
        for count, a, b in cases:
            ctx.set(dut.count[1], count)
            ctx.set(dut.param[1].scale, a)
            ctx.set(dut.param[1].offset, b)
            assert ctx.get(dut.score[1]) == a * (2 * count - n) + b

    _run_comb(dut, body)


def test_argmax_first_index_of_maximum():
    dut = Argmax(10, 34)
    rng = np.random.default_rng(3)
    cases = [[5] * 10, [-(2**33)] * 9 + [2**33 - 1], [7, 9, 9, 1, 9, 0, 0, 0, 0, 0]]
    cases += [rng.integers(-4, 4, 10).tolist() for _ in range(60)]

    async def body(ctx):
        for scores in cases:
            for i, s in enumerate(scores):
                ctx.set(dut.score[i], int(s))
            assert ctx.get(dut.index) == scores.index(max(scores))

    _run_comb(dut, body)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (784, 100, 10), "pe": (3, 10), "simd": (56, 10)}, "PE=3 must divide"),
        ({"widths": (784, 100, 10), "pe": (4, 10), "simd": (100, 10)}, "SIMD=100 must divide"),
        ({"widths": (784, 10), "pe": (10,), "simd": (56,), "in_width": 100}, "in_width=100"),
        ({"widths": (784, 10), "pe": (10, 1), "simd": (56,)}, "one entry per layer"),
        ({"widths": (784, 1), "pe": (1,), "simd": (56,)}, "classes"),
        ({"widths": (784, 0, 10), "pe": (1, 1), "simd": (1, 1)}, "widths"),
        ({"widths": (784, 10), "pe": (0,), "simd": (56,)}, "pe must be an integer >= 1"),
    ],
)
def test_folding_that_cannot_serve_a_size_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InferenceEngine(EngineConfig(**kwargs))


def test_weight_word_layout():
    fold = LayerFolding(n_in=6, n_out=4, pe=2, simd=3)
    w = np.zeros((4, 6), dtype=np.uint8)
    w[3, 4] = 1  # neuron 3 = group 1, PE 1; input 4 = fold 1, lane 1
    words = fold.weight_words(w)
    assert len(words) == fold.weight_depth == 4
    # word g*SF + s = 1*2 + 1 = 3, bit j*SIMD + k = 1*3 + 1 = 4
    assert words == [0, 0, 0, 1 << 4]


def test_engine_schedule_in_amaranth_sim():
    """Two images through a tiny engine with all-ones weights: known scores and cycle count."""
    config = EngineConfig((8, 4, 2), (2, 1), (4, 2), in_width=4)
    dut = InferenceEngine(config)
    l0, l1 = config.layers
    ones0 = (1 << l0.weight_width) - 1
    ones1 = (1 << l1.weight_width) - 1
    # Hidden: t = 5 (popcount >= 5), flip 0 -> neuron on when more than half the inputs are 1.
    tw = l0.threshold_width
    hidden_word = 5 | (5 << (tw + 1))
    # Output: class 0 score = 1 * dot + 0, class 1 score = -1 * dot + 3.
    score_words = l1.score_words(np.array([1, -1]), np.array([0, 3]))
    writes = [(0, a, ones0) for a in range(l0.weight_depth)]
    writes += [(1, a, hidden_word) for a in range(l0.param_depth)]
    writes += [(2, a, ones1) for a in range(l1.weight_depth)]
    writes += [(3, a, w) for a, w in enumerate(score_words)]
    images = [0b1111_1111, 0b0000_0001]  # 8 ones -> hidden all +1; 1 one -> hidden all -1
    expected = [(0, [4, -1]), (1, [-4, 7])]
    got, cycles = [], []
    sw, cw = config.score_width, config.class_width

    async def tb(ctx):
        for sel, addr, data in writes:
            payload = sel | (addr << config.write_select_width)
            payload |= data << (config.write_select_width + config.write_addr_width)
            ctx.set(dut.write.payload.as_value(), payload)
            ctx.set(dut.write.valid, 1)
            await ctx.tick().until(dut.write.ready)
        ctx.set(dut.write.valid, 0)
        ctx.set(dut.result.ready, 1)
        for img in images:
            for b in range(config.input_beats):
                ctx.set(dut.image.payload, (img >> (4 * b)) & 0xF)
                ctx.set(dut.image.valid, 1)
                await ctx.tick().until(dut.image.ready)
            ctx.set(dut.image.valid, 0)
            n = 0
            while not ctx.get(dut.result.valid):
                await ctx.tick()
                n += 1
            cycles.append(n)
            raw = ctx.get(dut.result.payload.as_value())
            scores = []
            for j in range(2):
                v = (raw >> (cw + j * sw)) & ((1 << sw) - 1)
                scores.append(v - (1 << sw) if v >> (sw - 1) else v)
            got.append((raw & ((1 << cw) - 1), scores))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == expected
    # After the last beat's edge: the image-full flag (1), layer 0's start cycle and run
    # (1 + 2*2 + 5), its output-full flag and layer 1 (1 + 1 + 4*1 + 5) -- each layer
    # SF*NF + 6 -- then the copy into the result register (1) and the argmax scan over the
    # other C - 1 = 1 class: 10 + 10 + 2 = 22 ticks.
    assert cycles == [22, 22]
    assert cycles == [(l0.cycles + 6) + (l1.cycles + 6) + 2] * 2 == [config.latency_cycles] * 2
