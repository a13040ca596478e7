"""The normalised lane (rtl/normalised_lane.py) against the golden rule, bit for bit, in the
Amaranth simulator: random states, gradients, moments and draws of a small layer, every synapse
driven through one combinational lane and compared with ``IntegerEngine._update``."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule
from spinapse.rtl.normalised_lane import (
    bit_length,
    moment,
    moment_width,
    norm_shift,
    normalised_weight,
)
from spinapse.rtl.update_lane import accumulate, fmeta_rom

RULE = IntegerRule(
    n_in=6, n_hidden=4, n_out=2, wh_bits=16, frac_bits=12, index_shift=9, init_range=205,
    dead_zone=0, lr_shift=0, norm_decay=10, norm_gain=19, stoch_round=True, m=4.0,
)  # fmt: skip


class _Lane(Elaboratable):
    """One synapse's lane: accumulator, row and lane moments, shift and normalised step."""

    def __init__(self, rule: IntegerRule, table) -> None:
        self.rule, self.table = rule, table
        r = rule
        self.pw, self.qw = moment_width(r, 1), moment_width(r, 2 * r.delta_bits - 1)
        self.w_h = Signal(signed(r.wh_bits))
        self.acc = Signal(signed(r.acc_bits))
        self.grad = Signal(signed(r.delta_bits + 1))
        self.x_sq = Signal(1)
        self.delta = Signal(signed(r.delta_bits))
        self.p = Signal(unsigned(self.pw))
        self.q = Signal(unsigned(self.qw))
        self.corr = Signal(range(r.norm_decay + 1))
        self.rand = Signal(32)
        self.acc_out = Signal(signed(r.acc_bits))
        self.w_out = Signal(signed(r.wh_bits))
        self.p_out = Signal(unsigned(self.pw))
        self.q_out = Signal(unsigned(self.qw))
        self.s_out = Signal(8)

    def elaborate(self, platform):
        m = Module()
        r = self.rule
        d_sq = Signal(unsigned(2 * r.delta_bits), name="d_sq")  # once per lane in the engine
        m.d.comb += d_sq.eq(self.delta * self.delta)
        p = moment(m, r, self.p, self.x_sq, self.pw, "p")
        q = moment(m, r, self.q, d_sq, self.qw, "q")
        s = norm_shift(
            m, bit_length(m, p, self.pw, "lp"), bit_length(m, q, self.qw, "lq"), self.corr, "s"
        )
        acc = accumulate(m, r, self.acc, self.grad, "lane")
        w = normalised_weight(m, r, fmeta_rom(self.table), self.w_h, acc, s, self.rand, "lane")
        m.d.comb += [
            self.acc_out.eq(acc),
            self.w_out.eq(w),
            self.p_out.eq(p),
            self.q_out.eq(q),
            self.s_out.eq(s),
        ]
        return m


def _cases(rule: IntegerRule, n_steps: int, seed: int):
    """Golden steps of layer 0 from random states: inputs and outputs of every synapse."""
    rng = np.random.default_rng(seed)
    e = IntegerEngine(rule, seed=seed)
    rows, lanes = rule.layer_shapes()[0]
    half_wh, half_acc = 1 << (rule.wh_bits - 1), 1 << (rule.acc_bits - 1)
    d = rule.norm_decay
    out = []
    for _ in range(n_steps):
        w = rng.integers(-half_wh, half_wh, (rows, lanes))
        w[0, 0], w[1, 0] = -half_wh, half_wh - 1  # the saturation ends
        acc = rng.integers(-half_acc, half_acc, (rows, lanes))
        e._w_h[0], e.acc[0] = w.copy(), acc.copy()
        # Log-uniform moments, so that the total shift takes both signs.
        e.row_moment[0] = rng.integers(0, 1 << rng.integers(0, 2 * d + 1, rows))
        e.lane_moment[0] = rng.integers(0, 1 << rng.integers(0, 2 * d + 13, lanes))
        e.norm_t = int(rng.integers(1, (1 << d) + 1))
        p_old, q_old = e.row_moment[0].copy(), e.lane_moment[0].copy()
        x = rng.integers(0, 2, rows)
        lim = 1 << (rule.delta_bits - 1)
        delta = rng.integers(-lim, lim, lanes)
        delta[rng.random(lanes) < 0.3] = 0
        draws = np.zeros((rows, lanes), dtype=np.int64)
        if rule.stoch_round:
            draws = copy.deepcopy(e.round_draws[0]).raw_rows(rows).astype(np.int64)
        s = e._norm_shift(0, x, delta)
        e._update(0, np.outer(x, delta), s)
        corr = max(d + 1 - e.norm_t.bit_length(), 0)
        for i in range(rows):
            for j in range(lanes):
                out.append(
                    dict(
                        ins=(w[i, j], acc[i, j], x[i] * delta[j], x[i], delta[j], p_old[i],
                             q_old[j], corr, draws[i, j]),
                        outs=(e.acc[0][i, j], e.w_h[0][i, j], e.row_moment[0][i],
                              e.lane_moment[0][j], s[i, j]),
                    )
                )  # fmt: skip
    return out


@pytest.mark.parametrize(
    "rule",
    [RULE, dataclasses.replace(RULE, stoch_round=False, dead_zone=3, lr_shift=2, norm_decay=6)],
    ids=["rounded", "truncated"],
)
def test_normalised_lane_matches_the_golden_rule(rule):
    cases = _cases(rule, 12, seed=4)
    dut = _Lane(rule, rule.tables()[0])
    seen = []

    async def bench(ctx):
        for c in cases:
            w, acc, g, x, delta, p, q, corr, rand = (int(v) for v in c["ins"])
            for sig, v in zip(
                (dut.w_h, dut.acc, dut.grad, dut.x_sq, dut.delta, dut.p, dut.q, dut.corr),
                (w, acc, g, x * x, delta, p, q, corr),
            ):
                ctx.set(sig, v)
            ctx.set(dut.rand, rand if rule.stoch_round else 0)
            seen.append(
                tuple(ctx.get(s) for s in (dut.acc_out, dut.w_out, dut.p_out, dut.q_out, dut.s_out))
            )

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    want = [tuple(int(v) for v in c["outs"]) for c in cases]
    assert seen == want
    # The cases reach both saturation ends and both shift directions (T = 8 + lr - gain + s).
    ws = [o[1] for o in want]
    assert min(ws) == -(1 << (rule.wh_bits - 1)) and max(ws) == (1 << (rule.wh_bits - 1)) - 1
    totals = [8 + rule.lr_shift - rule.norm_gain + o[4] for o in want]
    assert min(totals) < 0 < max(totals)
