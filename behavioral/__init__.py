"""Compact models of spintronic synapses in torch (SI units), device cards and Verilog-A sources."""
