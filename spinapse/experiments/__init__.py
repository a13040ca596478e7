"""The experiment application: configurations become runs.

Joins :mod:`spinapse.data`, :mod:`spinapse.config`, the golden models (:mod:`spinapse.golden`) and
the device models (:mod:`spinapse.behavioral`): the continual-learning runner and its learners
(float, device-backed, integer), checkpoints, result files and multi-seed studies. The command
line verbs are thin layers over this package."""
