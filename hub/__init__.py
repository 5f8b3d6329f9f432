"""hub: a LoRA adapter hub and management registry."""

__version__ = "0.1.0"
