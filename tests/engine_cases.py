"""Shared pieces of the small training-engine tests: a 24-6-3 rule and one driven step.

Imported by the test files of this folder (pytest puts it on ``sys.path``); not a test itself.
"""

from __future__ import annotations

import dataclasses

from spinapse.golden.integer_model.learning import IntegerRule


def rule_24_6_3(code_bits: int) -> IntegerRule:
    """A 24-6-3 digital rule that learns within a few dozen random steps (small windows and
    margin, fast thresholds), with ``code_bits`` bits of pulse code."""
    return dataclasses.replace(
        IntegerRule(),
        n_in=24,
        n_hidden=6,
        n_out=3,
        init_range=4,
        lr_shift=1,
        frac_bits=3,
        win1=6,
        margin=2,
        thr_shift=2,
        code_bits=code_bits,
    )


async def start_step(ctx, engine, x_bits, label: int) -> None:
    """Offer one training step to ``engine`` (Amaranth simulator context): ``x`` from the bool
    sequence ``x_bits`` (bit ``i`` = pixel ``i``), ``label``, ``train``, a one-cycle ``start``."""
    ctx.set(engine.x, int(sum(1 << i for i, b in enumerate(x_bits) if b)))
    ctx.set(engine.label, int(label))
    ctx.set(engine.train, 1)
    ctx.set(engine.start, 1)
    await ctx.tick()
    ctx.set(engine.start, 0)
