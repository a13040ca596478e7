"""spinapse: design, verify and prototype neuromorphic hardware with metaplastic spintronic
synapses.

Subpackages (one import name, folders named after the architecture):

- ``spinapse.golden`` (``golden/``): models only: ``float_model`` (metaplastic BNN, Adam_meta)
  and ``integer_model`` (bit-exact integer engine models).
- ``spinapse.experiments``: configurations to runs (continual runner, learners, checkpoints,
  result files, device-backed and integer runs, multi-seed studies).
- ``spinapse.behavioral`` (``behavioral/``): compact models of spintronic synapses, device cards,
  Verilog-A sources.
- ``spinapse.rtl`` (``rtl/``): Amaranth HDL of the inference and update engines.
- ``spinapse.cosim`` (``cosim/``): cocotb + Verilator testbenches and full-system co-simulation.
- ``spinapse.boards`` (``boards/``): FPGA targets.
- ``spinapse.data``, ``spinapse.cli``, ``spinapse.io``, ``spinapse.errors``: data sets, the command
  line, result files, user-facing errors.
"""

__version__ = "0.1.0"
