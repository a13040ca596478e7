"""Write-verify: pulse, sense, retry until the sensed weight is the target or the tries run out.

The usual way to write a stochastic MTJ reliably (each pulse only switches with probability
``P_sw``): every round pulses the devices whose sensed ``W_b`` still differs from the target, then
senses them again. Energy and pulse counts accumulate in the array.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spinapse.behavioral.metaplastic_synapse import MetaplasticSynapseArray, Where


@dataclass(frozen=True)
class WriteVerifyResult:
    """Outcome per selected device (1-D tensors in selection order).

    Attributes
    ----------
    pulses : int64 tensor
        Write pulses spent on each device (0 when it already held the target).
    ok : bool tensor
        True where the last sense matched the target.
    """

    pulses: torch.Tensor
    ok: torch.Tensor

    @property
    def failed(self) -> int:
        """Devices still wrong after the last try."""
        return int((~self.ok).sum())


def write_verify(
    array: MetaplasticSynapseArray,
    where: Where,
    target,
    amplitude: float,
    width: float,
    max_tries: int,
) -> WriteVerifyResult:
    """Write ``target`` (+-1 per selected device) with up to ``max_tries`` pulses each.

    Each round senses the devices not yet verified and pulses those that read wrong, with
    ``amplitude`` (A), ``width`` (s) and the target as polarity; a final sense closes the loop.

    Raises
    ------
    ValueError
        If ``max_tries`` < 1 or ``target`` is not +-1.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    idx = array.index(where)
    n = idx.numel()
    tgt = torch.as_tensor(target, dtype=torch.float64).reshape(-1).expand(n)
    if not bool(((tgt == 1) | (tgt == -1)).all()):
        raise ValueError("target must be +-1")
    pulses = torch.zeros(n, dtype=torch.int64)
    pending = torch.arange(n)
    for _ in range(max_tries):
        sel = idx[pending]
        wrong = array.sense((sel // array.cols, sel % array.cols)) != tgt[pending]
        pending = pending[wrong]
        if pending.numel() == 0:
            break
        sel = idx[pending]
        array.write((sel // array.cols, sel % array.cols), tgt[pending], amplitude, width)
        pulses[pending] += 1
    ok = torch.ones(n, dtype=torch.bool)
    if pending.numel():
        sel = idx[pending]
        ok[pending] = array.sense((sel // array.cols, sel % array.cols)) == tgt[pending]
    return WriteVerifyResult(pulses=pulses, ok=ok)
