"""Golden models: the float metaplastic BNN of Laborieux et al. (Nat. Commun. 12, 2549, 2021)
and the bit-exact integer models of the hardware engines."""
