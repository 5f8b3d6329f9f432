"""Findings: what a check or an inspection noticed, in one stable shape, and the one
catalog of their codes.

``code`` is a contract (scripts match on it) and has one fixed severity, declared in
:data:`CODES`; ``message`` says what to do. Every emitter (inspect, compat, merge,
combine) builds findings with :func:`finding`, so a code cannot be emitted without being
catalogued nor change severity; tests/test_findings_catalog.py walks hub/ to hold that.
docs/findings.md is rendered from the catalog (``python -m hub.findings``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error | warning | info
    module: str | None
    message: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Code:
    severity: str       # error | warning | info
    area: str           # adapter | adapter-base | adapter-adapter | runtime | merge
    summary: str        # one line for docs/findings.md


CODES: dict[str, Code] = {
    # the adapter itself (`hub add`, `hub inspect`) ----------------------------------------
    "NONFINITE_VALUES": Code("error", "adapter",
        "A tensor holds NaN or Inf values; the adapter is broken (`hub add --allow-nonfinite` registers it anyway)."),
    "TENSOR_PAIR_MISSING": Code("error", "adapter",
        "A module has lora_A without lora_B or the reverse: the adapter file is incomplete."),
    "UNSUPPORTED_LAYER": Code("error", "adapter",
        "LoRA factors that are not matrices (conv layers); hub handles Linear and Embedding LoRA."),
    "RANK_MISMATCH": Code("error", "adapter",
        "lora_A and lora_B of one module have different ranks: the file is inconsistent."),
    "CONFIG_RANK_MISMATCH": Code("error", "adapter",
        "The config's r (or rank_pattern) disagrees with the tensors' rank; PEFT fails with a size mismatch."),
    "DORA_SHAPE": Code("error", "adapter",
        "A DoRA magnitude vector does not have the module's output size."),
    "DORA_MISSING": Code("error", "adapter",
        "use_dora is set but a module has no lora_magnitude_vector."),
    "DORA_UNDECLARED": Code("warning", "adapter",
        "A module has a DoRA magnitude but use_dora is false; PEFT ignores the magnitude."),
    "TARGET_WITHOUT_TENSORS": Code("warning", "adapter",
        "A module named in target_modules has no tensors in the adapter."),
    "TARGET_REGEX_UNMATCHED": Code("error", "adapter",
        "target_modules is a regex that matches none of the adapted modules: PEFT would never load the tensors."),
    "PATTERN_UNUSED": Code("warning", "adapter",
        "A rank_pattern or alpha_pattern entry matches no adapted module."),
    "CONFIG_UNKNOWN_KEY": Code("info", "adapter",
        "adapter_config.json has a key hub does not know; it is kept as is."),
    "LAYER_REPLICATION_USED": Code("warning", "adapter",
        "layer_replication changes the model's structure: merging and combining are refused."),
    # adapter <-> base -------------------------------------------------------------------
    "NO_MODULE_IN_BASE": Code("error", "adapter-base",
        "None of the adapter's modules exist in the base: it is for another architecture. "
        "PEFT raises NoMatchingPeftModuleError (or loads nothing)."),
    "MODULE_NOT_IN_BASE": Code("error", "adapter-base",
        "Some adapted modules do not exist in the base; PEFT silently drops their weights."),
    "LAYERS_BEYOND_BASE": Code("error", "adapter-base",
        "The adapter has weights for layers the base does not have (the base has fewer layers); "
        "PEFT silently drops them."),
    "LAYERS_TO_TRANSFORM_OUT_OF_RANGE": Code("error", "adapter-base",
        "layers_to_transform names layer indices beyond the base's layer count."),
    "MODULES_WITHOUT_WEIGHTS": Code("error", "adapter-base",
        "PEFT would wrap base modules the adapter has no weights for (e.g. the base has more layers); "
        "they stay at their initialisation and PEFT only warns about missing keys."),
    "WEIGHTS_NOT_TARGETED": Code("error", "adapter-base",
        "The adapter has weights for modules its own target_modules/layers_to_transform do not select on "
        "this base; PEFT ignores those weights."),
    "MODULE_KIND_MISMATCH": Code("error", "adapter-base",
        "An embedding LoRA on a linear layer or the reverse, or a target that is not a weight matrix."),
    "SHAPE_MISMATCH": Code("error", "adapter-base",
        "lora_A/lora_B do not fit the base module's in/out features; PEFT fails with a size mismatch."),
    "KV_HEADS_MISMATCH": Code("error", "adapter-base",
        "k_proj/v_proj output sizes differ: the adapter was trained on a base with another number of "
        "key/value heads (grouped-query vs multi-head attention)."),
    "VOCAB_MISMATCH": Code("error", "adapter-base",
        "An embedding LoRA or a saved embedding/lm_head has another vocabulary size than the base."),
    "SAVED_TENSOR_NOT_IN_BASE": Code("error", "adapter-base",
        "A full tensor the adapter saves (modules_to_save) has no counterpart in the base."),
    "SAVED_TENSOR_SHAPE": Code("error", "adapter-base",
        "A full tensor the adapter saves (modules_to_save) has another shape than the base's."),
    "SHAPE_UNVERIFIED": Code("info", "adapter-base",
        "A quantized base hides a module's in/out features; only the element count was checked."),
    "TIED_EMBEDDINGS": Code("warning", "adapter-base",
        "The base ties lm_head to the input embedding and the adapter adapts or saves one of them."),
    "QUANTIZED_BASE": Code("warning", "adapter-base",
        "The base is quantized: bitsandbytes checkpoints are merged by dequantizing exactly (or requantized); "
        "other formats (GPTQ, AWQ, ...) are refused, and the finding says what a full-precision merge costs."),
    "DTYPE_DIFFERS": Code("info", "adapter-base",
        "Adapter and base are stored in different dtypes; says how PEFT and a merge cast them."),
    "DORA_BASE_SPECIFIC": Code("info", "adapter-base",
        "DoRA magnitudes were trained against exact base weights; a different base with equal shapes "
        "loads but gives different outputs."),
    "FAN_IN_FAN_OUT_CORRECTED": Code("info", "adapter-base",
        "The adapter's fan_in_fan_out flag disagrees with the base's layer type; PEFT corrects it on load."),
    "LAYERS_NOT_COVERED": Code("info", "adapter-base",
        "The adapter adapts only some of the base's layers (its targets name exact paths)."),
    "BASE_NAME_DIFFERS": Code("info", "adapter-base",
        "The adapter's base_model_name_or_path names another model; shapes decided the verdict."),
    "PATTERN_TOO_SLOW": Code("error", "adapter-base",
        "A regular expression in the config (target_modules, exclude_modules, layers_pattern, rank_pattern, "
        "alpha_pattern) did not finish within hub's time budget (HUB_PATTERN_BUDGET, 1 s): it backtracks "
        "catastrophically, and PEFT, which evaluates it with Python's re, would hang on it."),
    "TARGETS_UNKNOWN": Code("info", "adapter-base",
        "target_modules is missing, so PEFT's module matching could not be replayed."),
    # adapter <-> adapter ----------------------------------------------------------------
    "SHAPES_CONFLICT": Code("error", "adapter-adapter",
        "A module both adapters adapt has different in/out features: they are for different bases."),
    "ARCHITECTURES_DIFFER": Code("error", "adapter-adapter",
        "The adapters' modules live in different layer containers (model.layers.N vs transformer.h.N): "
        "different architectures."),
    "NO_COMMON_BASE": Code("error", "adapter-adapter",
        "The registry knows bases each adapter fits, and no base fits all of them."),
    "BASE_NAMES_DIFFER": Code("info", "adapter-adapter",
        "The adapters name different bases although their shapes agree."),
    "NO_SHARED_MODULES": Code("warning", "adapter-adapter",
        "The adapters adapt disjoint modules: the result is a union, nothing is actually blended."),
    "TARGETS_DIFFER": Code("info", "adapter-adapter",
        "Some modules are adapted by only some adapters; there the result holds that adapter's weighted delta."),
    "RANKS_DIFFER": Code("error", "adapter-adapter",
        "The method mixes factors elementwise and needs equal ranks (PEFT's linear, ties, dare_linear, dare_ties, "
        "magnitude_prune), but the ranks differ. hub's own methods take any ranks."),
    "RESULT_RANK": Code("info", "adapter-adapter",
        "The rank the combined adapter will have, per method."),
    "SCALING_DIFFERS": Code("warning", "adapter-adapter",
        "Scalings differ (alpha/r, rsLoRA alpha/sqrt(r), alpha_pattern); each adapter's scaling is folded into "
        "its lora_B before combining and the result is written with scaling 1."),
    "DORA_NOT_COMBINABLE": Code("error", "adapter-adapter",
        "A DoRA adapter cannot be combined exactly: its magnitude renormalises W+dW per row "
        "(hub offers --drop-dora, which combines only the LoRA part; PEFT drops the magnitudes silently)."),
    "LORA_BIAS_COMBINED": Code("info", "adapter-adapter",
        "An adapter has lora_B biases; hub's result carries their weighted sum."),
    "LORA_BIAS_DROPPED": Code("warning", "adapter-adapter",
        "An adapter has lora_B biases; PEFT's add_weighted_adapter does not combine them."),
    "MODULES_TO_SAVE_CONFLICT": Code("error", "adapter-adapter",
        "Several adapters save full copies of the same module; full weights have no weighted sum."),
    "MODULES_TO_SAVE_DROPPED": Code("warning", "adapter-adapter",
        "One adapter saves a full module (modules_to_save); a combination cannot carry it "
        "(hub needs --drop-modules-to-save, PEFT keeps the base's copy)."),
    "LAYER_REPLICATION": Code("error", "adapter-adapter",
        "layer_replication changes the model's structure; such adapters are not combined."),
    "FAN_IN_FAN_OUT_DIFFERS": Code("error", "adapter-adapter",
        "The adapters disagree on fan_in_fan_out: they target different layer types (Conv1D vs Linear)."),
    "TARGET_TYPES_MIXED": Code("error", "adapter-adapter",
        "PEFT methods only: target_modules given as a regex in some adapters and a list in others."),
    # runtime ----------------------------------------------------------------------------
    "VLLM_RANK_ABOVE_DEFAULT": Code("warning", "runtime",
        "Rank above vLLM's default --max-lora-rank 16; start vLLM with --max-lora-rank N, or "
        "`hub fix NAME --runtime vllm` for the best rank-16 approximation."),
    "VLLM_RANK_TOO_HIGH": Code("error", "runtime",
        "Rank above the largest --max-lora-rank vLLM accepts (512); `hub fix NAME --runtime vllm "
        "--max-lora-rank K` (or `hub resize NAME --rank K`) gives the best approximation within it."),
    "VLLM_MODULES_TO_SAVE": Code("error", "runtime",
        "vLLM refuses adapters with modules_to_save; `hub fix NAME --runtime vllm --base B` turns them into LoRA."),
    "VLLM_DORA": Code("error", "runtime", "vLLM does not support DoRA adapters; `hub fix NAME --runtime vllm "
                      "--base B` gives the plain LoRA closest to it on that base."),
    "VLLM_LORA_BIAS": Code("warning", "runtime",
        "lora_B biases: current vLLM releases do not load them."),
    "VLLM_EMBEDDING_LORA": Code("warning", "runtime",
        "LoRA on embed_tokens/lm_head: vLLM supports it only for some models."),
    "LLAMACPP_RSLORA": Code("warning", "runtime",
        "llama.cpp applies alpha/r with one global alpha; convert_lora_to_gguf.py writes an rsLoRA adapter "
        "(alpha/sqrt(r)) at the wrong strength. `hub export --format gguf` folds the scaling into lora_b; "
        "for other converters fold it first (`hub fix NAME --runtime llama.cpp`)."),
    "LLAMACPP_ALPHA_PATTERN": Code("warning", "runtime",
        "Per-module alpha (alpha_pattern) is ignored by convert_lora_to_gguf.py (one alpha per file); "
        "`hub export --format gguf` folds it into lora_b; for other converters fold it first "
        "(`hub fix NAME --runtime llama.cpp`)."),
    "LLAMACPP_DORA": Code("error", "runtime", "A GGUF adapter cannot hold DoRA magnitude vectors."),
    "LLAMACPP_MODULES_TO_SAVE": Code("error", "runtime",
        "A GGUF adapter cannot hold full tensors (modules_to_save, saved embeddings)."),
    "LLAMACPP_LORA_BIAS": Code("error", "runtime", "A GGUF adapter cannot hold lora_B biases."),
    "LLAMACPP_BASE_UNKNOWN": Code("info", "runtime",
        "No base known: the architecture, tensor-name and tied-embedding rules were not run (pass --base)."),
    "LLAMACPP_ARCHITECTURE": Code("error", "runtime",
        "The base's architecture is not one the GGUF converter covers (Llama, Mistral, Qwen2/3, Gemma 1-3, Phi-3)."),
    "LLAMACPP_MODULE_UNMAPPED": Code("error", "runtime",
        "Modules llama.cpp's graph has no LoRA slot for (no GGUF tensor name)."),
    "LLAMACPP_TIED_EMBEDDING": Code("error", "runtime",
        "LoRA on embed_tokens/lm_head of a base with tied embeddings: llama.cpp would apply it to both "
        "(or drop it)."),
    "PEFT_UNKNOWN_CONFIG_KEY": Code("info", "runtime",
        "adapter_config.json has keys this PEFT version does not know; older PEFT may refuse the config."),
    # merge and combine (`hub merge`, `hub combine`) ----------------------------------------
    "LORA_BIAS_WITHOUT_BASE_BIAS": Code("error", "merge",
        "The adapter has lora_B biases but the base layer has no bias; PEFT cannot merge it either."),
    "COMBINE_SHAPE_MISMATCH": Code("error", "merge",
        "Parents of a combination adapt one module with different kinds or sizes: they are for different bases."),
}


def finding(code: str, module: str | None, message: str) -> Finding:
    """A Finding whose severity comes from the catalog, so a code never changes severity."""
    return Finding(code, CODES[code].severity, module, message)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.severity, 9), f.code, f.module or ""))


def render_docs() -> str:
    """The body of docs/findings.md."""
    titles = {"adapter": "The adapter itself (`hub add`, `hub inspect`)",
              "adapter-base": "Adapter ↔ base (`hub check NAME --base B`, `--all-bases`, `hub list --fits B`)",
              "adapter-adapter": "Adapter ↔ adapter (`hub check A B ... --method M`)",
              "runtime": "Runtime lint (`hub check NAME --runtime vllm|llama.cpp|ollama|peft`)",
              "merge": "Merge and combine (`hub merge`, `hub combine`; refusals carry these findings)"}
    lines = [
        "# Findings", "",
        "Every `hub check` finding has a stable `code`, a `severity` (error / warning / info), the `module`",
        "it concerns (a module path, a `*` template for a group of layers, or null) and a `message` that",
        "says what to do. Any error makes the verdict incompatible (`\"compatible\": false`, exit 1).", "",
        "This page is generated from `hub/findings.py` (`python -m hub.findings > docs/findings.md`);",
        "A test keeps them equal, and another walks hub/ so that every emitted code is listed here.", "",
        "## How the checks decide", "",
        "- **Adapter ↔ base** reads only the base's `config.json` and safetensors headers (`hub base add`",
        "  stores them) and the adapter's per-module shapes (stored by `hub add`). It replays what",
        "  `PeftModel.from_pretrained` would do on that base: a size mismatch is an error there, and so",
        "  are the two failures PEFT lets pass silently: adapter weights for modules the base lacks",
        "  (dropped without a word) and base modules PEFT wraps without weights (only a missing-keys",
        "  warning). `tests/test_compat_peft.py` crosses real tiny bases with real PEFT adapters and",
        "  checks every verdict against PEFT itself. The base's layout is read through: GPT-2 Conv1D",
        "  stores (in, out), GPTQ/AWQ pack weights into `qweight`, bitsandbytes 4-bit keeps the shape in",
        "  a small `quant_state` tensor, and a tied `lm_head` has no tensor of its own.",
        "- Verdicts are stored per (adapter, base) when either is registered, so `hub list --fits B`,",
        "  `hub check NAME --all-bases` and `hub check --base B` answer from the registry; `--refresh`",
        "  re-checks. The adapter's `base_model_name_or_path` never decides a verdict (it is often null,",
        "  `../` or a Kaggle path); the registry resolves each adapter's base by shapes.",
        "- **Quantized bases** fit when their logical shapes fit. hub merges into bitsandbytes 4-bit/8-bit",
        "  checkpoints (dequantized exactly, or `--requantize`d); the `QUANTIZED_BASE` finding gives the",
        "  scheme (type, block size, double quantization, dtypes) and the size of the merge.",
        "- **Adapter ↔ adapter** rules follow the method: hub's own methods (`cat`, `linear`, `svd`,",
        "  `ties`, `dare_linear`, `dare_ties`, `magnitude_prune`) or PEFT's `add_weighted_adapter` types",
        "  as `peft:<type>`. They say what rank the result has and which methods need equal ranks. Scaling",
        "  differences are folded, not ignored, and DoRA is refused because no adapter holds it exactly.",
        "- **Runtime lint** encodes vLLM's LoRA limits (default `--max-lora-rank 16`, no",
        "  `modules_to_save`, no DoRA) and llama.cpp's GGUF adapters (one global alpha, only lora_a/lora_b",
        "  tensors, the base's architecture and tensor names). The llama.cpp rules are the gate of",
        "  `hub export --format gguf`: it refuses exactly their errors. Ollama uses the same rules.",
        "  `hub fix NAME --runtime R` derives an adapter that passes, with each change's",
        "  measured error; `hub resize NAME --rank K` lowers the rank optimally.", "",
    ]
    for area, title in titles.items():
        lines += [f"## {title}", "", "| code | severity | meaning |", "|---|---|---|"]
        for code, c in CODES.items():
            if c.area == area:
                lines.append(f"| `{code}` | {c.severity} | {c.summary} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_docs(), end="")


def fits(findings) -> bool:
    """A verdict holds when no finding is an error (warnings and notes do not block)."""
    return not any(f.severity == "error" for f in findings)
