"""What each serving runtime can load, as `hub fix` needs it (the facts and their
sources are in hub.compat.runtime, which `hub check --runtime` runs)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.compat.runtime import VLLM_DEFAULT_MAX_RANK, VLLM_MAX_RANKS, runtime_key
from hub.errors import UsageError


@dataclass(frozen=True)
class RuntimeNeeds:
    name: str
    max_rank: int | None        # largest rank it serves (None: any)
    dora: bool                  # serves DoRA magnitudes
    modules_to_save: bool       # loads whole saved modules
    lora_bias: bool             # loads lora_B biases
    one_alpha: bool             # one lora_alpha for all modules, scaled alpha/r_i per tensor (llama.cpp)


# vLLM applies one lora_alpha / r to every module, so its adapters get scaling 1 everywhere;
# llama.cpp (and Ollama, which runs llama.cpp) has one alpha and divides by each tensor's rank.
_NEEDS = {
    "vllm": dict(dora=False, modules_to_save=False, lora_bias=False, one_alpha=False),
    "llama.cpp": dict(dora=False, modules_to_save=False, lora_bias=False, one_alpha=True),
    "ollama": dict(dora=False, modules_to_save=False, lora_bias=False, one_alpha=True),
    "peft": dict(dora=True, modules_to_save=True, lora_bias=True, one_alpha=False),
}


def needs_of(runtime: str, max_lora_rank: int | None = None) -> RuntimeNeeds:
    from hub import plugins

    key = runtime_key(runtime)
    plugins.find("hub.runtimes", key)   # an unknown runtime: one line listing the known ones
    if key not in _NEEDS:   # a runtime `hub check` knows but fix does not: say so, do not guess
        raise UsageError(f"hub fix does not know what {key} needs yet", "--runtime",
                         f"use one of: {', '.join(sorted(_NEEDS))}")
    if max_lora_rank is not None and (isinstance(max_lora_rank, bool) or max_lora_rank < 1):
        raise UsageError(f"--max-lora-rank must be >= 1, got {max_lora_rank}", "--max-lora-rank", "e.g. 16")
    max_rank = max_lora_rank
    if key == "vllm":
        max_rank = VLLM_DEFAULT_MAX_RANK if max_lora_rank is None else max_lora_rank
        if max_rank not in VLLM_MAX_RANKS:
            raise UsageError(f"--max-lora-rank {max_rank} is not a value vLLM accepts", "--max-lora-rank",
                             f"use one of {', '.join(map(str, VLLM_MAX_RANKS))}")
    return RuntimeNeeds(key, max_rank, **_NEEDS[key])


def known() -> tuple[str, ...]:
    return tuple(_NEEDS)


def serve_command(runtime: str, name: str, path: str, base: str, max_rank: int) -> list[str]:
    """The command lines that serve registered adapter ``name`` on ``base``; ``path``: where
    its PEFT folder is (or goes, with the `hub export` line the caller adds)."""
    key = runtime_key(runtime)
    if key == "vllm":
        flag = next((v for v in VLLM_MAX_RANKS if v >= max_rank), VLLM_MAX_RANKS[-1])
        return [f"vllm serve {base} --enable-lora --lora-modules {name}={path} --max-lora-rank {flag}"]
    if key == "llama.cpp":
        return [f"hub export {name} {name}.gguf --format gguf --base {base}",
                f"llama-server -m BASE.gguf --lora {name}.gguf"]
    if key == "ollama":
        return [f"hub export {name} ./ollama-{name} --format ollama --base {base} --from MODEL",
                f"ollama create {name} -f ./ollama-{name}/Modelfile"]
    return [f"python -c \"from transformers import AutoModelForCausalLM; from peft import PeftModel; "
            f"m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('{base}'), '{path}')\""]
