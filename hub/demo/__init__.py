"""Tiny real models and PEFT adapters built offline, for the demo, tests and benchmarks."""
