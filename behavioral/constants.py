"""Physical constants (CODATA 2018, exact where SI defines them) used by the compact models.

The Verilog-A sources in ``behavioral/va`` write the same numbers, so torch and Verilog-A agree to
rounding.
"""

K_B = 1.380649e-23  # Boltzmann constant, J/K (exact)
Q_E = 1.602176634e-19  # elementary charge, C (exact)
HBAR = 1.054571817e-34  # reduced Planck constant, J s
MU_B = 9.2740100783e-24  # Bohr magneton, J/T
EULER_GAMMA = 0.5772156649015329  # the constant C of the Sun model
