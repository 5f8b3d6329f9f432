"""Which quantization a model's ``quantization_config`` declares (shared by the base
reader and the bitsandbytes layout, which import it from here rather than each other)."""

from __future__ import annotations


def quant_method(quantization) -> str | None:
    if not isinstance(quantization, dict) or not quantization:
        return None
    method = str(quantization.get("quant_method") or "").lower()
    if not method and (quantization.get("load_in_4bit") or quantization.get("load_in_8bit")):
        method = "bitsandbytes"
    return method or "unknown"
