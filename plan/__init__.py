"""Tape-out planning: area, memory, energy and latency of the chip from the RTL and the cards."""
