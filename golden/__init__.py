"""Golden models, on the ground floor (they import torch and numpy, nothing else of spinapse):

- :mod:`spinapse.golden.float_model`: the float metaplastic BNN of Laborieux et al.
  (Nat. Commun. 12, 2549, 2021), what the science says;
- :mod:`spinapse.golden.integer_model`: the bit-exact integer models of the hardware engines,
  what the RTL computes.

The experiments that use them (configurations, runs, checkpoints, reports) live one floor up, in
:mod:`spinapse.experiments`."""
