"""A board's USB serial port as a byte transport of :class:`spinapse.boards.driver.EngineDriver`."""

from __future__ import annotations


class SerialTransport:
    """pyserial port, 8N1.

    Parameters
    ----------
    port : str
        Device name (``/dev/ttyUSB0``, ``COM3``) or a pyserial URL (``socket://host:port`` for a
        board on another machine, ``loop://`` for a loopback).
    baud : int
        Must equal the baud the bitstream was built for (``spinapse fpga build --baud``).
    timeout_s : float
        Longest wait for a reply.

    Raises
    ------
    serial.SerialException
        If the port cannot be opened.
    """

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 5.0) -> None:
        import serial

        self._port = serial.serial_for_url(port, baudrate=baud, timeout=timeout_s)
        self.timeout_s = timeout_s
        self.name = port

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def read(self, n: int) -> bytes:
        data = self._port.read(n)
        if len(data) != n:
            raise TimeoutError(f"{self.name}: got {len(data)} of {n} bytes in {self.timeout_s} s")
        return data

    def close(self) -> None:
        self._port.close()
