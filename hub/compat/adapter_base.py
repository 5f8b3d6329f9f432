"""Adapter <-> base: does this adapter fit this base, module by module, shape by shape?

The rules mirror what ``PeftModel.from_pretrained`` does with the adapter on that
base: a size mismatch is an error there; a module the base lacks, or a base module
PEFT wraps without weights, passes silently there and is an error here.
"""

from __future__ import annotations

from typing import NamedTuple

from hub import patterns
from hub.compat.grouping import Collector, template
from hub.compat.specs import AdapterSpec, BaseSpec, shape_rows
from hub.compat.targeting import wrapped_modules
from hub.findings import Finding, finding, fits  # noqa: F401 - fits is compat API
from hub.formats.base_model import OUTPUT_HEADS, BaseModule, logical_param_count


class _Shape(NamedTuple):
    kind: str
    in_features: int
    out_features: int


KV_LEAVES = frozenset({"k_proj", "v_proj", "key", "value", "k", "v", "wk", "wv"})
USE_MATCHING_BASE = "use the base it was trained on (`hub check NAME --all-bases` lists the registered ones it fits)"


def check_adapter_base(adapter: AdapterSpec, base: BaseSpec) -> list[Finding]:
    """Every finding for ``adapter`` on ``base``; any error means it does not fit.

    The config's regular expressions run under one time budget (hub.patterns): a pattern
    that exhausts it is the finding PATTERN_TOO_SLOW, not a hang."""
    try:
        with patterns.budget():
            return _check_adapter_base(adapter, base)
    except patterns.PatternTimeout as exc:
        return [finding("PATTERN_TOO_SLOW", None, exc.what + ": " + exc.fix)]


def _check_adapter_base(adapter: AdapterSpec, base: BaseSpec) -> list[Finding]:
    """check_adapter_base without the pattern budget.

    Runs once per adapter in a batch over the whole registry, so the per-module loop is
    kept tight: equal shapes cost one dict lookup, and a mismatch's message is computed
    once per (module, shapes) and reused across adapters.
    """
    out = Collector()
    table = base.modules
    memo = base.memo
    resolved: dict[str, str] = {}          # adapter module path -> base module path
    missing: list[str] = []
    for path, kind, fin, fout in shape_rows(adapter.modules):
        target = path if path in table else base.resolve(path)
        if target is None:
            missing.append(path)
            continue
        resolved[path] = target
        b = table[target]
        if fin == b.in_features and fout == b.out_features and (kind == "embedding") == (b.kind == "embedding"):
            continue
        key = (target, kind, fin, fout)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = _module_fit(target, kind, fin, fout, b, base)
        if hit:
            out.add(hit[0], path, hit[1])

    layers = base.layer_count
    beyond_only = bool(missing) and layers is not None and all(
        (i := template(p)[1]) is not None and i >= layers for p in missing)
    if adapter.modules and not resolved and not beyond_only:
        leaves = sorted({p.rsplit(".", 1)[-1] for p in adapter.modules})
        arch = base.architecture or base.model_type or "this base"
        return [finding("NO_MODULE_IN_BASE", None,
                        f"none of the adapter's {len(adapter.modules)} modules ({', '.join(leaves)}) exist in "
                        f"{arch}: the adapter is for another architecture; {USE_MATCHING_BASE}")]
    _missing_modules(out, missing, base)
    out.extend(_layer_rules(adapter, base))
    _targeting(out, adapter, base, resolved)
    out.extend(_saved_tensors(adapter, base))
    out.extend(_notes(adapter, base, resolved))
    return out.findings()


def fitting_bases(adapter: AdapterSpec, bases) -> list[tuple[BaseSpec, list[Finding]]]:
    """Which of ``bases`` does the adapter fit? Shapes decide, whatever its config names.
    Bases whose name matches the adapter's declared base come first."""
    found = [(b, f) for b in bases if fits(f := check_adapter_base(adapter, b))]
    declared = str(adapter.base_model or "").rstrip("/")
    return sorted(found, key=lambda bf: not (declared and declared in (bf[0].name, bf[0].path)))


# -- one module ------------------------------------------------------------------------

def _module_fit(path: str, kind: str, fin: int, fout: int, b: BaseModule, base: BaseSpec) -> tuple[str, str] | None:
    """(code, message) when an adapter module of ``kind`` fitting fin->fout features does not
    fit base module ``b``; None when it does."""
    m = _Shape(kind, fin, fout)
    if (m.kind == "embedding") != (b.kind == "embedding"):
        have = "an embedding LoRA (lora_embedding_A/B)" if m.kind == "embedding" else "a linear LoRA (lora_A/B)"
        return ("MODULE_KIND_MISMATCH",
                f"the adapter has {have} but the base module is a {b.kind} layer; PEFT would not load "
                f"these weights: {USE_MATCHING_BASE}")
    if b.in_features is None or b.out_features is None:
        if b.numel is not None and b.numel != m.in_features * m.out_features:
            return ("SHAPE_MISMATCH",
                f"the adapter expects {m.in_features}x{m.out_features} weights but the quantized base "
                f"module holds {b.numel} elements: {USE_MATCHING_BASE}")
        return ("SHAPE_UNVERIFIED",
                f"the {b.quantized} base packs this weight; only its element count could be checked")
    if (m.in_features, m.out_features) == (b.in_features, b.out_features):
        return None
    leaf = path.rsplit(".", 1)[-1]
    if b.kind == "embedding":
        if m.in_features != b.in_features and path == base.input_embedding:
            return ("VOCAB_MISMATCH",
                f"the adapter's embedding LoRA covers {m.in_features} tokens but the base vocabulary has "
                f"{b.in_features}: load the base with the adapter's tokenizer and "
                f"resize_token_embeddings({m.in_features}), or {USE_MATCHING_BASE}")
    elif leaf in OUTPUT_HEADS and m.in_features == b.in_features and m.out_features != b.out_features:
        return ("VOCAB_MISMATCH",
                f"the adapter's {leaf} LoRA produces {m.out_features} logits but the base vocabulary has "
                f"{b.out_features}: resize the base's embeddings to the adapter's tokenizer, or "
                f"{USE_MATCHING_BASE}")
    elif leaf in KV_LEAVES and m.in_features == b.in_features and base.head_dim \
            and m.out_features % base.head_dim == 0:
        return ("KV_HEADS_MISMATCH",
                f"the adapter's {leaf} outputs {m.out_features} features ({m.out_features // base.head_dim} "
                f"key/value heads of {base.head_dim}) but the base has {b.out_features} "
                f"({b.out_features // base.head_dim} heads): it was trained on a model with another "
                f"attention layout (grouped-query vs multi-head); {USE_MATCHING_BASE}")
    what = "in" if m.in_features != b.in_features else "out"
    hint = ""
    if what == "in" and base.hidden_size and m.in_features != b.in_features:
        hint = f" (the base's hidden size is {base.hidden_size})"
    return ("SHAPE_MISMATCH",
                f"lora_A/lora_B fit {m.in_features}->{m.out_features} features but the base {b.kind} is "
                f"{b.in_features}->{b.out_features}{hint}; PEFT fails with a size mismatch: {USE_MATCHING_BASE}")


# -- modules and layers ------------------------------------------------------------------

def _missing_modules(out: Collector, missing: list[str], base: BaseSpec) -> None:
    layers = base.layer_count
    for path in missing:
        i = template(path)[1]
        if layers is not None and i is not None and i >= layers:
            out.add("LAYERS_BEYOND_BASE", path,
                    f"the base has {layers} layers (0-{layers - 1}); PEFT silently drops the adapter's weights for "
                    f"this layer: {USE_MATCHING_BASE}")
        else:
            out.add("MODULE_NOT_IN_BASE", path,
                    f"the base has no module of this name; PEFT silently drops the adapter's weights for it: "
                    f"{USE_MATCHING_BASE}")


def _layer_rules(adapter: AdapterSpec, base: BaseSpec) -> list[Finding]:
    layers = adapter.config.get("layers_to_transform")
    if layers is None or base.layer_count is None:
        return []
    wanted = [layers] if isinstance(layers, int) else list(layers)
    beyond = sorted(i for i in wanted if i >= base.layer_count)
    if not beyond:
        return []
    return [finding("LAYERS_TO_TRANSFORM_OUT_OF_RANGE", None,
                    f"layers_to_transform names layers {beyond} but the base has {base.layer_count} "
                    f"(0-{base.layer_count - 1}): {USE_MATCHING_BASE}")]


def _targeting(out: Collector, adapter: AdapterSpec, base: BaseSpec, resolved: dict[str, str]) -> None:
    wrapped = wrapped_modules(adapter.config, base)
    if wrapped is None:
        out.add("TARGETS_UNKNOWN", None,
                "adapter_config.json has no target_modules, so PEFT's matching was not replayed; only the modules "
                "in the weights file were checked")
        return
    have = set(resolved.values())
    without = wrapped - have
    for path in sorted(without):
        out.add("MODULES_WITHOUT_WEIGHTS", path,
                "PEFT would put a LoRA layer here but the adapter has no weights for it (PEFT only warns 'Found "
                "missing adapter keys'); the base probably has more layers or other module names than the one it "
                f"was trained on: {USE_MATCHING_BASE}")
    untargeted = [p for p, t in resolved.items() if t not in wrapped]
    for path in sorted(untargeted):
        out.add("WEIGHTS_NOT_TARGETED", path,
                "the adapter has weights for this module but its target_modules/layers_to_transform do not select it "
                "on this base; PEFT ignores them: fix the config or use the matching base")
    if not without and not untargeted and base.layer_count and adapter.layer_indices:
        covered = len(adapter.layer_indices)
        if covered < base.layer_count:
            out.add("LAYERS_NOT_COVERED", None,
                    f"the adapter adapts {covered} of the base's {base.layer_count} layers (its targets name exact "
                    "paths, so PEFT leaves the others alone); fine if it was trained that way, otherwise it belongs "
                    "to a model with fewer layers")


def _saved_tensors(adapter: AdapterSpec, base: BaseSpec) -> list[Finding]:
    out = []
    embed = base.input_embedding
    for name, shape in adapter.saved_tensors.items():
        module = name.rsplit(".", 1)[0]
        hit = base.resolve_tensor(name)
        if hit is None:
            out.append(finding("SAVED_TENSOR_NOT_IN_BASE", module,
                               f"the adapter saves a full {name.rsplit('.', 1)[-1]} {list(shape)} for this module "
                               f"(modules_to_save) but the base has no such parameter: {USE_MATCHING_BASE}"))
            continue
        held_by, base_shape = hit
        if tuple(shape) == base_shape:
            continue
        vocab_like = held_by == f"{embed}.weight" or module.rsplit(".", 1)[-1] in OUTPUT_HEADS
        if vocab_like and len(shape) == 2 and shape[1:] == base_shape[1:]:
            out.append(finding("VOCAB_MISMATCH", module,
                               f"the adapter saves this module for a {shape[0]}-token vocabulary but the base has "
                               f"{base_shape[0]}: load the base with the adapter's tokenizer and "
                               f"resize_token_embeddings({shape[0]}), or {USE_MATCHING_BASE}"))
        else:
            out.append(finding("SAVED_TENSOR_SHAPE", module,
                               f"the adapter saves {name.rsplit('.', 1)[-1]} with shape {list(shape)} but the base's "
                               f"is {list(base_shape)}; PEFT fails with a size mismatch: {USE_MATCHING_BASE}"))
    return out


# -- notes that do not change the verdict ------------------------------------------------

def _notes(adapter: AdapterSpec, base: BaseSpec, resolved: dict[str, str]) -> list[Finding]:
    out = []
    if base.tie_word_embeddings:
        embed = base.input_embedding
        heads = {p for p, m in base.modules.items() if m.tied_to}
        touched = sorted({t for t in resolved.values() if t in heads or t == embed}
                         | {n.rsplit(".", 1)[0] for n in adapter.saved_tensors
                            if (hit := base.resolve_tensor(n)) and hit[0] == f"{embed}.weight"})
        if touched:
            out.append(finding("TIED_EMBEDDINGS", ", ".join(touched),
                               "the base ties lm_head to the input embedding, and the adapter adapts or replaces "
                               f"{' and '.join(touched)}: PEFT unties them (a LoRA/saved copy on one side does not "
                               "move the other), so a merge must write lm_head separately and set "
                               "tie_word_embeddings=false; llama.cpp ignores lm_head LoRA on tied models"))
    if base.quant_method:
        out.append(_quantized(base))
    if adapter.dtype and base.dtype and adapter.dtype not in (base.dtype, "mixed") and base.dtype != "mixed":
        out.append(finding("DTYPE_DIFFERS", None,
                           f"the adapter is stored in {adapter.dtype}, the base in {base.dtype}: PEFT computes the "
                           f"LoRA branch in the adapter's dtype (upcasting float16/bfloat16 adapters to float32); "
                           f"a merge rounds the delta to {base.dtype}"))
    if adapter.use_dora:
        out.append(finding("DORA_BASE_SPECIFIC", None,
                           "DoRA magnitudes were trained against exact base weights: on another base with the same "
                           "shapes (a fine-tune, a re-upload in another dtype) it loads but behaves differently; "
                           "use the very base it was trained on"))
    kinds = {base.modules[t].kind for t in resolved.values()}
    if "conv1d" in kinds and not adapter.fan_in_fan_out:
        out.append(finding("FAN_IN_FAN_OUT_CORRECTED", None,
                           "the base's layers are Conv1D but the adapter says fan_in_fan_out=false: PEFT sets it to "
                           "true on load (with a warning); set it in adapter_config.json to silence that"))
    elif adapter.fan_in_fan_out and "linear" in kinds:
        out.append(finding("FAN_IN_FAN_OUT_CORRECTED", None,
                           "the adapter says fan_in_fan_out=true but the base's layers are nn.Linear: PEFT sets it to "
                           "false on load (with a warning); set it in adapter_config.json to silence that"))
    if adapter.base_name_usable and base.name:
        named = str(adapter.base_model).rstrip("/")
        known = {str(x).rstrip("/") for x in (base.name, base.path, base.config.get("_name_or_path")) if x}
        if named not in known and not any(k.endswith("/" + named) or named.endswith("/" + k) for k in known):
            out.append(finding("BASE_NAME_DIFFERS", None,
                               f"adapter_config.json names {adapter.base_model!r} as its base; the verdict comes from "
                               "shapes, not names (a fine-tune of that base fits too)"))
    return out


def _quantized(base: BaseSpec) -> Finding:
    method = base.quant_method
    bits = (base.quantization or {}).get("bits") or (
        4 if (base.quantization or {}).get("load_in_4bit") else 8 if (base.quantization or {}).get("load_in_8bit") else None)
    label = f"{method} {bits}-bit" if bits else method
    params = logical_param_count(base.shapes, base.quantization)
    scheme = base.quant_scheme
    if method == "bitsandbytes" and scheme:
        detail = (f"{scheme['method']}" + (f", block size {scheme['blocksize']}"
                                           f"{', double quantization' if scheme.get('double_quant') else ''}"
                                           if scheme["bits"] == 4 else "")
                  + f", stored from {scheme['dtype']}"
                  + (f", compute {scheme['compute_dtype']}" if scheme.get("compute_dtype") else ""))
        dequant = params * {"float32": 4}.get(scheme["dtype"], 2)
        return finding("QUANTIZED_BASE", None,
                       f"the base is a bitsandbytes {bits}-bit checkpoint ({detail}): `hub merge` dequantizes each "
                       f"weight exactly as bitsandbytes does and adds the deltas ({params / 1e9:.2f}B parameters, "
                       f"{_gb(dequant)} written in {scheme['dtype']}), or writes it requantized with --requantize")
    return finding("QUANTIZED_BASE", None,
                   f"the base is {label}-quantized: PEFT loads this adapter on it, but hub merges only into "
                   f"full-precision or bitsandbytes checkpoints; merge into the unquantized base "
                   f"({params / 1e9:.2f}B parameters, {_gb(params * 2)} in float16 against {_gb(base.size_bytes)} now), "
                   f"with --as-quantized nf4|fp4|int8 for a QLoRA-faithful merge")


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
