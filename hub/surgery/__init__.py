"""Adapter surgery: derive a new adapter from one you have, with its measured cost.

- ``resize``: the best rank-K (or energy-E) approximation of every module's scaled
  delta, from the factors (hub.combine.lowrank, shared with ``hub combine --method svd``).
- ``fix``: what a serving runtime (vLLM, llama.cpp, Ollama, PEFT) needs: rank within its
  limit, DoRA and modules_to_save turned into plain LoRA on a given base, patterns folded.
- ``extract``: a LoRA from a fully fine-tuned model's difference to its base, streamed
  tensor pair by tensor pair, with randomized SVD.

Every result is a :class:`Surgery`: the new PEFT adapter (config + tensors) and one
:class:`ModuleChange` per module saying what was done and its relative error
‖ΔW_new − ΔW_target‖_F / ‖ΔW_target‖_F. Pure torch; no registry, CLI or TUI here.
"""

from hub.surgery.report import ModuleChange, Surgery
from hub.surgery.resize import resize

__all__ = ["ModuleChange", "Surgery", "resize"]
