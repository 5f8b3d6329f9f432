"""The adapter flags (`hub list --flag`, the filter language's ``is:``, the TUI's Flags
column), declared once: name, what the TUI shows, what it means, and the adapters
column / AdapterRecord field that holds it. Order here is display and sort order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    name: str         # as typed: hub list --flag NAME, is:NAME
    label: str        # how the TUI's Flags column spells it (the filter language accepts it too)
    meaning: str      # for help screens and `hub list --help`
    column: str       # the boolean adapters column (hub.registry.schema) that holds it
    field: str        # the AdapterRecord field that is truthy when it is set


DECLARED: tuple[Flag, ...] = (
    Flag("rslora", "rsLoRA", "rank-stabilised LoRA (scaling alpha/sqrt(r))", "use_rslora", "use_rslora"),
    Flag("dora", "DoRA", "DoRA (weight-decomposed; has magnitude vectors)", "use_dora", "use_dora"),
    Flag("embed", "embed", "adapts an embedding layer", "has_embedding_lora", "has_embedding_lora"),
    Flag("mts", "saves-mods", "modules_to_save: carries fully trained copies of some modules",
         "has_modules_to_save", "modules_to_save"),
    Flag("bias", "bias", "trains LoRA biases (lora_bias)", "lora_bias", "lora_bias"),
    Flag("fifo", "conv1d", "fan_in_fan_out: Conv1D weights stored transposed (GPT-2 style)",
         "fan_in_fan_out", "fan_in_fan_out"),
)

FLAGS: tuple[str, ...] = tuple(f.name for f in DECLARED)
FLAG_MEANINGS: dict[str, str] = {f.name: f.meaning for f in DECLARED}
FLAG_LABELS: dict[str, str] = {f.name: f.label for f in DECLARED}


def flags_of(record) -> list[str]:
    """The flags an AdapterRecord (or anything with its fields) carries, in declared order."""
    return [f.name for f in DECLARED if getattr(record, f.field)]
