"""cocotb + Verilator testbenches joining the RTL with the golden and behavioural models."""
