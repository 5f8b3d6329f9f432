"""Quantization as bitsandbytes does it: NF4/FP4 4-bit blocks (with double quantization)
and LLM.int8 rows, through bitsandbytes when installed, else through hub's own torch
port (``kernels``), bit for bit the same. Domain code: no registry, CLI or TUI here."""
