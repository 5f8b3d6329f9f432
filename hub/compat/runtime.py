"""Runtime lint: will vLLM, llama.cpp, Ollama or PEFT serve this adapter?

Each runtime is a :class:`RuntimeRules` unit registered through the ``hub.runtimes``
entry-point group (hub.plugins). llama.cpp's rules are also the GGUF export's gate:
`hub export --format gguf` refuses exactly what they call an error, so check never says
yes where export says no. Ollama loads adapters through llama.cpp: same rules.

Facts encoded here (checked against the runtimes' sources):
- vLLM's LoRAConfig: max_lora_rank defaults to 16 and accepts 1, 8, 16, 32, 64, 128,
  256, 320, 512 (``MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`` and
  ``max_lora_rank: MaxLoRARanks = 16`` in vllm/config/lora.py, vllm-project/vllm at
  01230b40128e570a58e54e75f7e55c4d5cd9246d); its PEFTHelper (vllm/lora/peft_helper.py)
  refuses modules_to_save and DoRA and applies one scale, lora_alpha / r, to every module.
- llama.cpp's convert_lora_to_gguf.py writes one global ``lora_alpha`` and llama.cpp
  scales each tensor by alpha / rank(tensor): rank_pattern works, alpha_pattern and
  rsLoRA (alpha / sqrt(r)) do not; it exits on any tensor that is not lora_A/lora_B
  (DoRA magnitudes, lora_B biases, full modules_to_save tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from hub.compat.specs import AdapterSpec, BaseSpec
from hub.findings import Finding, finding, sort_findings
from hub.formats.adapter_config import unknown_keys
from hub.formats.base_model import OUTPUT_HEADS

VLLM_DEFAULT_MAX_RANK = 16
VLLM_MAX_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class RuntimeRules:
    name: str
    summary: str
    rules: Callable[[AdapterSpec, BaseSpec | None], list[Finding]]   # base: None when unknown


def runtimes() -> list[str]:
    """Built-in and installed runtimes (hub.plugins; nothing is imported)."""
    from hub import plugins

    return plugins.names("hub.runtimes")


def runtime_key(runtime: str) -> str:
    return runtime.lower().replace("_", ".").replace("llamacpp", "llama.cpp")


def check_runtime(adapter: AdapterSpec, runtime: str, base: BaseSpec | None = None) -> list[Finding]:
    """Findings for ``adapter`` on ``runtime`` (a built-in or a hub.runtimes plugin); ``base``,
    when known, lets architecture-specific rules run (llama.cpp tensor names, tied embeddings)."""
    from hub import plugins

    unit = plugins.load("hub.runtimes", runtime_key(runtime))
    return sort_findings(unit.rules(adapter, base))


def _ref(a: AdapterSpec) -> str:
    """How a suggested command names the adapter."""
    return a.name or "NAME"


def _saved_modules(a: AdapterSpec) -> list[str]:
    """Full tensors other than the embedding weights PEFT saves next to an embedding LoRA."""
    own = {k.rsplit(".", 1)[0] for k in a.saved_tensors if k.rsplit(".", 1)[0] not in a.modules}
    return sorted(set(a.modules_to_save) | own)


def _vllm(a: AdapterSpec, base: BaseSpec | None = None) -> list[Finding]:
    out = []
    r = a.max_rank
    if r > VLLM_MAX_RANKS[-1]:
        out.append(finding("VLLM_RANK_TOO_HIGH", None,
                           f"rank {r} is above the largest --max-lora-rank vLLM accepts ({VLLM_MAX_RANKS[-1]}): "
                           f"`hub fix {_ref(a)} --runtime vllm --max-lora-rank K` (or `hub resize {_ref(a)} --rank K`) "
                           "gives the best approximation within it; or merge it into the base"))
    elif r > VLLM_DEFAULT_MAX_RANK:
        flag = next(v for v in VLLM_MAX_RANKS if v >= r)
        out.append(finding("VLLM_RANK_ABOVE_DEFAULT", None,
                           f"rank {r} is above vLLM's default max_lora_rank {VLLM_DEFAULT_MAX_RANK}, so a default "
                           f"server refuses it: start vLLM with --max-lora-rank {flag}, or "
                           f"`hub fix {_ref(a)} --runtime vllm` for the best rank-{VLLM_DEFAULT_MAX_RANK} approximation"))
    saved = _saved_modules(a)
    if saved:
        out.append(finding("VLLM_MODULES_TO_SAVE", ", ".join(saved),
                           "vLLM refuses adapters with modules_to_save ('vLLM only supports modules_to_save being "
                           f"None'): `hub fix {_ref(a)} --runtime vllm --base BASE` turns them into LoRA on that base, "
                           "or merge the adapter into the base with `hub merge`"))
    if a.use_dora:
        out.append(finding("VLLM_DORA", None,
                           f"vLLM does not support DoRA: `hub fix {_ref(a)} --runtime vllm --base BASE` gives the plain "
                           "LoRA closest to it on that base, or merge it into the base with `hub merge`"))
    if a.lora_bias:
        out.append(finding("VLLM_LORA_BIAS", None,
                           "the adapter has lora_B biases, which current vLLM releases do not load (older ones needed "
                           "--enable-lora-bias): check your version, or merge it into the base"))
    embed = sorted(p for p, m in a.modules.items()
                   if m.kind == "embedding" or p.rsplit(".", 1)[-1] in OUTPUT_HEADS)
    if embed:
        out.append(finding("VLLM_EMBEDDING_LORA", ", ".join(embed),
                           "LoRA on the embedding or lm_head is supported by vLLM only for some model classes "
                           "(their embedding_modules): test it on your model or merge it into the base"))
    return out


def _llama_cpp(a: AdapterSpec, base: BaseSpec | None = None) -> list[Finding]:
    out = []
    alpha = a.lora_alpha
    # what llama.cpp will apply per module: the global alpha over that tensor's rank
    wrong = {p: (m.scaling, alpha / m.r) for p, m in a.modules.items() if not math.isclose(m.scaling, alpha / m.r)}
    if wrong and a.use_rslora:
        s_peft, s_cpp = next(iter(wrong.values()))
        out.append(finding("LLAMACPP_RSLORA", None,
                           f"rsLoRA scales by alpha/sqrt(r) = {s_peft:g} but llama.cpp applies alpha/r = {s_cpp:g} "
                           f"({s_peft / s_cpp:.2f}x too weak) to what convert_lora_to_gguf.py writes: "
                           f"`hub export {_ref(a)} FILE.gguf --format gguf` folds the scaling into lora_b (or "
                           f"`hub fix {_ref(a)} --runtime llama.cpp` into the factors, for other converters)"))
    elif wrong:
        modules = sorted({p.rsplit(".", 1)[-1] for p in wrong})
        out.append(finding("LLAMACPP_ALPHA_PATTERN", ", ".join(modules),
                           f"alpha_pattern gives {', '.join(modules)} their own alpha, but a GGUF adapter has one "
                           f"alpha ({alpha:g}) and convert_lora_to_gguf.py ignores the pattern: "
                           f"`hub export {_ref(a)} FILE.gguf --format gguf` folds each module's scaling into lora_b "
                           f"(or `hub fix {_ref(a)} --runtime llama.cpp` into the factors, for other converters)"))
    if a.use_dora:
        out.append(finding("LLAMACPP_DORA", None,
                           "llama.cpp has no DoRA magnitudes (its GGUF adapter holds only lora_a/lora_b pairs): "
                           f"`hub fix {_ref(a)} --runtime llama.cpp --base BASE` makes the closest plain LoRA "
                           "(error reported), which exports; or merge it exactly with `hub merge` and convert "
                           "the merged model"))
    saved = _saved_modules(a)
    if saved:
        out.append(finding("LLAMACPP_MODULES_TO_SAVE", ", ".join(saved),
                           "a GGUF adapter cannot hold full tensors (modules_to_save): "
                           f"`hub fix {_ref(a)} --runtime llama.cpp --base BASE` turns them into LoRA on that base, "
                           "which exports; or merge it with `hub merge` and convert the merged model"))
    if a.lora_bias:
        out.append(finding("LLAMACPP_LORA_BIAS", None,
                           "a GGUF adapter cannot hold lora_B biases: "
                           f"`hub fix {_ref(a)} --runtime llama.cpp` drops them (their size reported), which "
                           "exports; or merge it with `hub merge` and convert the merged model"))
    return out + _llama_cpp_layout(a, base)


def _llama_cpp_layout(a: AdapterSpec, base: BaseSpec | None) -> list[Finding]:
    """The rules that need the base: its architecture, tensor names and tied embeddings."""
    from hub.formats.gguf import layout      # the gguf format's name table, imported only when used

    if base is None:
        return [finding("LLAMACPP_BASE_UNKNOWN", None,
                        "no base known for this adapter, so its architecture and tensor names were not checked: "
                        "pass --base (a registered base or a model folder)")]
    arch, family = layout.family_of(base.config)
    if family is None:
        covered = ", ".join(sorted(layout.ARCHITECTURES))
        return [finding("LLAMACPP_ARCHITECTURE", arch or "?",
                        f"GGUF export covers {covered}; {arch or 'this base'} is not among them: merge the "
                        "adapter with `hub merge` and convert the merged model with llama.cpp")]
    out = []
    unmapped = sorted(p for p in a.modules if layout.tensor_name(p, family) is None)
    if unmapped:
        out.append(finding("LLAMACPP_MODULE_UNMAPPED", ", ".join(unmapped[:4]) + (" ..." if len(unmapped) > 4 else ""),
                           f"llama.cpp's {family.gguf_arch} graph has no LoRA slot for {len(unmapped)} module(s): "
                           "merge the adapter into the base with `hub merge` and convert the merged model"))
    heads = sorted(p for p in a.modules if layout.tensor_name(p) in ("token_embd.weight", "output.weight"))
    if heads and (base.tie_word_embeddings or "lm_head.weight" not in base.shapes):
        out.append(finding("LLAMACPP_TIED_EMBEDDING", ", ".join(heads),
                           "the base ties lm_head to embed_tokens, and llama.cpp would apply a token_embd LoRA "
                           "to the output head too (or drop an lm_head LoRA): merge the adapter into the base "
                           "with `hub merge` and convert the merged model"))
    return out


def _peft(a: AdapterSpec, base: BaseSpec | None = None) -> list[Finding]:
    # PEFT is the reference runtime; what remains is config keys it may not know
    return [finding("PEFT_UNKNOWN_CONFIG_KEY", None,
                    f"adapter_config.json has {key!r}, which PEFT 0.21's LoraConfig does not know: older or "
                    "newer PEFT versions may refuse or ignore it; remove it if PEFT complains")
            for key in unknown_keys(dict(a.config))]


VLLM = RuntimeRules("vllm", "vLLM's LoRA loader: rank limits, no DoRA, no modules_to_save", _vllm)
LLAMA_CPP = RuntimeRules("llama.cpp", "llama.cpp GGUF adapters (also the gate of `hub export --format gguf`)",
                         _llama_cpp)
OLLAMA = RuntimeRules("ollama", "Ollama's ADAPTER: a GGUF LoRA that llama.cpp loads (same rules)", _llama_cpp)
PEFT = RuntimeRules("peft", "PEFT itself: config keys this version does not know", _peft)
