"""FPGA targets (iCE40, ECP5) built with the open toolchain, and the prototype's pin-out."""
