"""Amaranth HDL of the binarized inference engine and the metaplastic update engine.

Knows nothing of torch: everything here elaborates with Amaranth alone.
"""
