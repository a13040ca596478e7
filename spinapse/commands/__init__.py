"""Verbs of the ``spinapse`` command line, one module each (see :mod:`spinapse.cli`)."""
