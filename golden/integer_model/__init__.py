"""The integer golden model: what the hardware engines compute, bit for bit. Integer inference
(XNOR-popcount against folded-BatchNorm thresholds), the integer metaplastic learning rule with
its f_meta table, and the array models of the synapses the engine drives. Depends on numpy and
torch alone; the RTL is compared with these models bit for bit."""
