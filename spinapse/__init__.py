"""spinapse: design, verify and prototype neuromorphic hardware with metaplastic spintronic
synapses.

Subpackages (one import name, folders named after the architecture):

- ``spinapse.golden`` (``golden/``): float metaplastic BNN and bit-exact integer engine models.
- ``spinapse.behavioral`` (``behavioral/``): compact models of spintronic synapses, device cards,
  Verilog-A sources.
- ``spinapse.rtl`` (``rtl/``): Amaranth HDL of the inference and update engines.
- ``spinapse.cosim`` (``cosim/``): cocotb + Verilator testbenches and full-system co-simulation.
- ``spinapse.boards`` (``boards/``): FPGA targets.
- ``spinapse.data``, ``spinapse.cli``, ``spinapse.io``: data sets, the command line, result files.
"""

__version__ = "0.1.0"
