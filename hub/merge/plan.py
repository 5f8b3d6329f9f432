"""Build a MergePlan: which output tensor gets which LoRA deltas, replacements and
casts, in which output shard, from safetensors headers and configs only.

Semantics (all exact, each one checked against PEFT in tests/test_merge_*.py):

- Adapters are folded in the order given. Weight ``w`` multiplies the adapter's
  scaling, as PEFT's ``set_scale(w)`` does, so plain LoRA gives ``W + Σ wᵢ·sᵢ·BᵢAᵢ``
  and a DoRA adapter is renormalised against the unmerged base rows, like PEFT
  merging several active adapters in turn.
- Full tensors in the adapter replace base tensors before any delta: copies PEFT
  saved as ``<module>.base_layer.weight`` (embedding LoRA) and modules_to_save.
- Tied embeddings: when a merge touches the input embedding or the output head of
  a tied base, both sides are written and the config is untied, because that is
  what PEFT's unmerged model computes (PEFT's own merge_and_unload adds an
  lm_head/embedding delta to the shared tensor, changing both sides).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import HubError, Incompatible, InvalidAdapter, Unsupported, UsageError
from hub.findings import Finding, finding, has_errors
from hub.formats.adapter_weights import WEIGHTS_NAME, split_keys
from hub.formats.base_model import BaseModelInfo, read_base_model
from hub.formats.safetensors_header import ADAPTER, DTYPE_SIZES, read_header
from hub.inspect import AdapterInfo, inspect_adapter

FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")
DTYPE_CHOICES = {"keep": None, "bf16": "BF16", "fp16": "F16", "fp32": "F32"}
DEFAULT_SHARD_SIZE = 5 * 1000**3
# resident size of Python + torch + hub before any tensor is read (measured: ~235 MB on Linux x86-64)
RUNTIME_BASELINE_BYTES = 250 * 1000**2
# host buffers of the streamed path (hub.merge.pipeline): whatever the model's size
STREAM_POOL_BYTES = 64 << 20
# bytes of whole tensors in flight between the reader and the writer (the non-streamed path)
DEFAULT_PREFETCH_BYTES = 512 << 20
STREAM_DTYPES = ("F32", "F16", "BF16")
# LoraConfig fields whose layers are not a plain or DoRA LoRA: their merge is something else
UNMERGEABLE_OPTIONS = (
    "use_bdlora", "alora_invocation_tokens", "arrow_config", "velora_config", "monteclora_config",
    "kasa_config", "use_qalora", "target_parameters", "trainable_token_indices",
)
# names of the input embedding table, most common first
EMBEDDING_SUFFIXES = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "tok_embeddings.weight",
                      "embed_in.weight")
HEAD_NAMES = ("lm_head.weight", "embed_out.weight")


@dataclass(frozen=True)
class MergeInput:
    info: AdapterInfo
    weight: float
    name: str                  # how the user called it (registry name or folder)


@dataclass(frozen=True)
class LoraOp:
    """Add one adapter's module delta (DoRA when magnitude_key is set)."""
    adapter: int               # index into MergePlan.adapters
    module: str
    a_key: str
    b_key: str
    scaling: float             # module scaling × adapter weight
    embedding: bool
    fan_in_fan_out: bool
    magnitude_key: str | None = None


@dataclass(frozen=True)
class BiasOp:
    """lora_bias: add lora_B.bias × scaling to the base bias."""
    adapter: int
    module: str
    key: str
    scaling: float


@dataclass(frozen=True)
class Replacement:
    adapter: int
    key: str                   # tensor key inside the adapter file


@dataclass
class TensorTask:
    name: str                  # output tensor name
    source: str                # base tensor it starts from
    source_file: str           # shard file name in the base folder
    begin: int                 # absolute byte range of the source data in that file
    end: int
    shape: tuple[int, ...]
    in_dtype: str
    out_dtype: str
    replace: Replacement | None = None
    ops: list = field(default_factory=list)
    out_file: str = ""
    # quantized merges (hub.merge.quantized): how the base value is read (a packed weight) or
    # transformed (QLoRA round trip), and how the result is written (requantized); add deltas
    # unfused there, as PEFT does, so results match it bit for bit
    packed: object | None = None
    transform: object | None = None
    sink: object | None = None
    original: bool = False     # keep the untransformed weight (for the drift report)

    @property
    def entries(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(name, dtype, shape) of each tensor this task writes."""
        if self.sink is not None:
            return self.sink.entries(self)
        return [(self.name, self.out_dtype, self.shape)]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def in_bytes(self) -> int:
        return self.end - self.begin

    @property
    def out_bytes(self) -> int:
        return sum(math.prod(shape) * DTYPE_SIZES[dtype] for _, dtype, shape in self.entries)

    @property
    def quantized(self) -> bool:
        return self.packed is not None or self.transform is not None or self.sink is not None

    @property
    def touched(self) -> bool:
        return self.replace is not None or bool(self.ops)

    @property
    def streamable(self) -> bool:
        """Folded in row pieces (hub.merge.pipeline): a 2-D weight that only gets plain LoRA deltas, in its own dtype."""
        return (self.replace is None and not self.quantized and len(self.shape) == 2 and bool(self.ops)
                and self.in_dtype == self.out_dtype and self.in_dtype in STREAM_DTYPES
                and all(isinstance(op, LoraOp) and not op.magnitude_key for op in self.ops))

    @property
    def raw_copy(self) -> bool:
        """Bytes can go from the base file to the output untouched."""
        return not self.touched and not self.quantized and self.in_dtype == self.out_dtype


@dataclass
class MergePlan:
    base: BaseModelInfo
    adapters: list[MergeInput]
    tasks: list[TensorTask]
    shards: list[str]
    out_dtype: str | None          # None: keep each tensor's dtype
    untie_embeddings: bool
    shard_size: int
    findings: list[Finding] = field(default_factory=list)
    quant: dict | None = None          # quantized merges: mode, schemes, backend (hub.merge.quantized)
    config_updates: dict = field(default_factory=dict)   # config.json keys to set (None: remove)

    @property
    def touched(self) -> list[TensorTask]:
        return [t for t in self.tasks if t.touched]

    @property
    def bytes_written(self) -> int:
        return sum(t.out_bytes for t in self.tasks)

    @property
    def bytes_read(self) -> int:
        adapter_bytes = sum(a.info.size_bytes for a in self.adapters)
        return sum(t.in_bytes for t in self.tasks) + adapter_bytes

    def peak_memory_estimate(self, prefetch_bytes: int, in_flight_tensors: int = 11) -> int:
        """Interpreter and torch, plus the streamed path's buffer pool, plus the tensors merged
        whole in flight (bounded by the prefetch budget and by the pipeline's queues: at most
        ``in_flight_tensors`` at once) with the fp32 working set of the largest (weight and delta,
        and the unmerged copy DoRA needs), plus the adapters. Untouched tensors are copied file
        to file and cost nothing here."""
        pool = STREAM_POOL_BYTES if any(t.streamable for t in self.tasks) else 0
        computed = sorted((t for t in self.tasks if not t.raw_copy and not t.streamable),
                          key=lambda t: t.in_bytes + t.out_bytes, reverse=True)
        if not computed:
            return RUNTIME_BASELINE_BYTES + pool + sum(a.info.size_bytes for a in self.adapters)
        largest = computed[0].in_bytes + computed[0].out_bytes
        queued = sum(t.in_bytes + t.out_bytes for t in computed[:in_flight_tensors])
        in_flight = min(max(prefetch_bytes, largest), queued)
        has_dora = any(isinstance(op, LoraOp) and op.magnitude_key for t in computed for op in t.ops)
        working = max(t.numel for t in computed) * 4 * (3 if has_dora else 2)
        return RUNTIME_BASELINE_BYTES + pool + in_flight + working + sum(a.info.size_bytes for a in self.adapters)

    def describe(self, device: str, prefetch_bytes: int) -> dict:
        """The dry-run report (also what the CLI prints with --json)."""
        return {
            "base": self.base.path,
            "adapters": [{"name": a.name, "path": a.info.path, "weight": a.weight, "sha256": a.info.sha256}
                         for a in self.adapters],
            "device": device,
            "dtype": self.out_dtype or "keep",
            "tensors_total": len(self.tasks),
            "tensors_touched": len(self.touched),
            "touched": [t.name for t in self.touched],
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "peak_memory_estimate": self.peak_memory_estimate(prefetch_bytes),
            "shards": self.shards,
            "untie_embeddings": self.untie_embeddings,
            "findings": [f.to_dict() for f in self.findings],
            **({"quantization": self.quant} if self.quant else {}),
        }


def _where(path, module: str | None) -> str:
    """"PATH: MODULE", or PATH alone for a finding about the whole adapter (never "PATH: None")."""
    return f"{path}: {module}" if module else str(path)


def parse_size(text: str | int) -> int:
    """'5GB' -> 5e9, '500MiB' -> 500·2²⁰, plain integers are bytes."""
    if isinstance(text, int):
        return text
    units = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
             "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}
    s = text.strip().upper().replace(" ", "")
    num = s.rstrip("KMGTIB")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        value = -1
    if unit not in units or not 0 < value < 2**62 / units.get(unit, 1):   # NaN and inf fail too
        raise UsageError(f"cannot read size {text!r}", None, "write it like 5GB, 500MB or 2GiB")
    return int(value * units[unit])


def resolve_dtype(dtype: str | None) -> str | None:
    if dtype is None:
        return None
    if dtype not in DTYPE_CHOICES:
        raise UsageError(f"unknown dtype {dtype!r}", None, f"use one of {', '.join(DTYPE_CHOICES)}")
    return DTYPE_CHOICES[dtype]


def _refuse_unmergeable(info: AdapterInfo, name: str) -> None:
    cfg = info.config
    if info.peft_type != "LORA":
        raise Unsupported(f"{name} is a {info.peft_type} adapter", info.path, "hub merges LoRA adapters only")
    if cfg.get("layer_replication"):
        raise Unsupported(f"{name} uses layer_replication, which adds layers that share base weights", info.path,
                          "merge it with PEFT's merge_and_unload; a streaming merge cannot duplicate layers")
    for option in UNMERGEABLE_OPTIONS:
        if cfg.get(option):
            raise Unsupported(f"{name} uses {option}, a LoRA variant hub cannot merge exactly", info.path,
                              "merge it with PEFT's merge_and_unload")
    if has_errors(info.findings):
        errors = [f for f in info.findings if f.severity == "error"]
        raise Incompatible(f"{name} is broken: {errors[0].message}", _where(info.path, errors[0].module),
                           "fix the adapter; `hub show` lists its findings", findings=errors)


def _run_compat(base: BaseModelInfo, info: AdapterInfo, name: str) -> list[Finding]:
    """hub.compat's adapter/base rules first (as `hub check` runs them); refuse on errors."""
    try:
        from hub.compat import AdapterSpec, BaseSpec, check_adapter_base
    except ImportError:  # compat is optional for the engine: the plan still checks every shape it uses
        return []
    findings = list(check_adapter_base(AdapterSpec.from_info(info, name), BaseSpec.from_info(base)))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Incompatible(f"{name} does not fit the base: {errors[0].message}{more}",
                           f"{base.path}: {errors[0].module}",
                           f"run `hub check {name} --base {base.path}` for every finding", findings=findings)
    return findings


class _Resolver:
    """Maps module paths and parameter names to base checkpoint tensors."""

    def __init__(self, base: BaseModelInfo):
        self.base = base
        self.names = set(base.tensors)
        self.embedding = next((n for suffix in EMBEDDING_SUFFIXES
                               for n in sorted(self.names) if n.endswith(suffix)), None)
        self.head = next((n for n in HEAD_NAMES if n in self.names), None)
        self.tied = (base.tie_word_embeddings and self.head is None and self.embedding is not None)
        if self.tied:
            # the head transformers ties to the embedding when the checkpoint has none
            self.head = HEAD_NAMES[0]

    def tensor(self, name: str) -> str | None:
        """Checkpoint name for a model parameter name, or None."""
        if name in self.names or (self.tied and name == self.head):
            return name
        # checkpoints saved without the base_model_prefix (old GPT-2: "h.0.attn..." for "transformer.h.0...")
        head, _, rest = name.partition(".")
        if rest in self.names:
            return rest
        return None


def build_full_plan(base: str | os.PathLike | BaseModelInfo, adapters, *, dtype: str | None = "keep",
                    shard_size: int | str = DEFAULT_SHARD_SIZE) -> MergePlan:
    """The plan for a full-precision base (hub.merge.build_plan chooses it, or the quantized
    plan, which builds on it). ``adapters``: a list of (folder | AdapterInfo | MergeInput,
    weight) pairs or MergeInputs."""
    base_info = base if isinstance(base, BaseModelInfo) else read_base_model(base)
    out_dtype = resolve_dtype(dtype)
    shard_bytes = parse_size(shard_size)
    inputs = [_as_input(item) for item in adapters]
    if not inputs:
        raise UsageError("no adapters to merge", None, "name at least one adapter")

    findings: list[Finding] = []
    for inp in inputs:
        _refuse_unmergeable(inp.info, inp.name)
        findings += _run_compat(base_info, inp.info, inp.name)

    resolver = _Resolver(base_info)
    headers = {shard: read_header(Path(base_info.path) / shard) for shard in base_info.shards}
    ops: dict[str, list] = {}
    base_layer_copies: dict[str, Replacement] = {}       # PEFT loads these into the (shared) base parameter
    own_copies: dict[str, tuple[Replacement, str]] = {}  # modules_to_save: only that module
    errors: list[Finding] = []

    def shape_of(name: str) -> tuple[int, ...]:
        src = resolver.embedding if (resolver.tied and name == resolver.head) else name
        return base_info.tensors[src].shape

    for idx, inp in enumerate(inputs):
        info = inp.info
        weights_file = Path(info.path) / WEIGHTS_NAME
        header = read_header(weights_file, ADAPTER)
        raw_modules, _ = split_keys(header.tensors)
        fifo = info.fan_in_fan_out
        for path, mod in sorted(info.modules.items()):
            keys = raw_modules[path].tensors
            target = resolver.tensor(f"{path}.weight")
            if target is None:
                errors.append(finding("MODULE_NOT_IN_BASE", path,
                                      f"{inp.name} adapts {path}, which the base has no weight for"))
                continue
            shape = shape_of(target)
            embedding = mod.kind == "embedding"
            if embedding:
                expected = (mod.in_features, mod.out_features)   # (vocab, dim)
            elif fifo:
                expected = (mod.in_features, mod.out_features)
            else:
                expected = (mod.out_features, mod.in_features)
            if tuple(shape) != expected:
                errors.append(finding("SHAPE_MISMATCH", path,
                                      f"{inp.name} expects a weight of shape {list(expected)} but the base has "
                                      f"{list(shape)}; it was trained on another base"))
                continue
            if base_info.tensors[resolver.embedding if target == resolver.head and resolver.tied else target].dtype \
                    not in FLOAT_DTYPES:
                raise Unsupported(f"base weight {target} is not floating point", base_info.path,
                                  "merge into an unquantized floating-point base")
            # PEFT ignores a magnitude without use_dora (inspect warns about it); so do we
            magnitude = keys.get("magnitude") if (mod.dora and info.use_dora) else None
            ops.setdefault(target, []).append(LoraOp(
                adapter=idx, module=path, a_key=keys["A"], b_key=keys["B"], scaling=mod.scaling * inp.weight,
                embedding=embedding, fan_in_fan_out=fifo and not embedding, magnitude_key=magnitude))
            if "B_bias" in keys:
                bias = resolver.tensor(f"{path}.bias")
                if bias is None:
                    errors.append(finding("LORA_BIAS_WITHOUT_BASE_BIAS", path,
                                          f"{inp.name} has lora_bias but the base layer has no bias; "
                                          "PEFT cannot merge it either"))
                    continue
                ops.setdefault(bias, []).append(BiasOp(idx, path, keys["B_bias"], mod.scaling * inp.weight))
        for key, entry in header.tensors.items():
            stripped = key[len("base_model.model."):] if key.startswith("base_model.model.") else key
            if any(part in stripped for part in (".lora_A", ".lora_B", ".lora_embedding_", ".lora_magnitude_vector")):
                continue
            from_base_layer = ".base_layer." in stripped
            name = stripped.replace(".base_layer.", ".")
            if ".modules_to_save." in name or ".token_adapter." in name:
                raise Unsupported(f"{inp.name} has a tensor hub does not know how to merge: {key}", str(weights_file),
                                  "re-save the adapter with a current PEFT")
            target = resolver.tensor(name)
            if target is None:
                errors.append(finding("MODULE_NOT_IN_BASE", name,
                                      f"{inp.name} replaces {name}, which the base does not have"))
                continue
            if tuple(entry.shape) != tuple(shape_of(target)):
                errors.append(finding("SHAPE_MISMATCH", name,
                                      f"{inp.name} replaces {name} with shape {list(entry.shape)} but the base has "
                                      f"{list(shape_of(target))} (a resized vocabulary?); merge the resize first"))
                continue
            if entry.dtype not in FLOAT_DTYPES:
                raise Unsupported(f"{inp.name} replaces {name} with a {entry.dtype} tensor", str(weights_file),
                                  "hub merges floating-point tensors only")
            if inp.weight != 1.0 and not from_base_layer:
                raise Unsupported(f"{inp.name} replaces {name} as a whole (modules_to_save or a saved embedding), "
                                  f"and a full tensor cannot be weighted by {inp.weight:g}", str(weights_file),
                                  "merge this adapter with weight 1")
            if from_base_layer:
                base_layer_copies[target] = Replacement(idx, key)   # later adapters overwrite, as PEFT loads them
            else:
                if target in own_copies:
                    other = inputs[own_copies[target][0].adapter].name
                    raise Unsupported(f"{other} and {inp.name} both replace {target} (modules_to_save)", None,
                                      "merge only one of them, or combine them first")
                own_copies[target] = (Replacement(idx, key), name)

    if errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Incompatible(f"{first.message}{more}", _where(base_info.path, first.module),
                           "merge adapters trained on this base; `hub check` lists every finding",
                           findings=findings + errors)

    # Tied embeddings: if anything touches either side, write both and untie.
    untie = False
    if resolver.tied:
        emb, head = resolver.embedding, resolver.head
        if any(n in ops or n in base_layer_copies or n in own_copies for n in (emb, head)):
            untie = True
            shared = base_layer_copies.get(emb) or base_layer_copies.get(head)
            for n in (emb, head):
                if shared is not None:
                    base_layer_copies[n] = shared

    tasks: list[TensorTask] = []
    order = sorted(base_info.tensors.values(),
                   key=lambda t: (base_info.shards.index(t.file), headers[t.file].tensors[t.name].begin))
    for bt in order:
        names = [bt.name] + ([resolver.head] if untie and bt.name == resolver.embedding else [])
        entry = headers[bt.file].tensors[bt.name]
        start = headers[bt.file].data_start
        for name in names:
            replace = own_copies[name][0] if name in own_copies else base_layer_copies.get(name)
            casts = out_dtype is not None and bt.dtype in FLOAT_DTYPES
            tasks.append(TensorTask(
                name=name, source=bt.name, source_file=bt.file, begin=start + entry.begin, end=start + entry.end,
                shape=tuple(bt.shape), in_dtype=bt.dtype, out_dtype=out_dtype if casts else bt.dtype,
                replace=replace, ops=list(ops.get(name, ())),
            ))
    shards = assign_shards(tasks, shard_bytes)
    return MergePlan(base=base_info, adapters=inputs, tasks=tasks, shards=shards, out_dtype=out_dtype,
                     untie_embeddings=untie, shard_size=shard_bytes, findings=findings)


def _as_input(item) -> MergeInput:
    if isinstance(item, MergeInput):
        return item
    if isinstance(item, AdapterInfo):
        return MergeInput(item, 1.0, item.path)
    src, weight = item
    weight = float(weight)
    if not math.isfinite(weight):
        raise UsageError(f"adapter weight {weight} is not a finite number", str(src), "pass a weight like 0.5 or -1")
    if isinstance(src, MergeInput):
        return MergeInput(src.info, weight, src.name)
    if isinstance(src, AdapterInfo):
        return MergeInput(src, weight, src.path)
    if not isinstance(src, (str, os.PathLike)):
        raise InvalidAdapter(f"cannot merge {src!r}", None, "pass an adapter folder or an AdapterInfo")
    refuse_other_peft_types(Path(src))
    return MergeInput(inspect_adapter(src), weight, str(src))


def refuse_other_peft_types(folder: Path) -> None:
    """Say "this is IA3" rather than "lora_alpha is missing" for non-LoRA adapters."""
    import json

    from hub.formats.adapter_config import read_config_text

    try:
        peft_type = json.loads(read_config_text(folder / "adapter_config.json")).get("peft_type")
    except (OSError, ValueError, AttributeError, RecursionError, HubError):
        return  # inspect_adapter reports unreadable configs with the details
    if isinstance(peft_type, str) and peft_type.upper() != "LORA":
        raise Unsupported(f"the adapter is a {peft_type} adapter, not LoRA", str(folder),
                          "hub merges LoRA adapters only; merge it with PEFT's merge_and_unload")


def assign_shards(tasks: list[TensorTask], shard_bytes: int) -> list[str]:
    groups: list[list[TensorTask]] = [[]]
    size = 0
    for task in tasks:
        if groups[-1] and size + task.out_bytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(task)
        size += task.out_bytes
    if len(groups) == 1:
        names = ["model.safetensors"]
    else:
        names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    for name, group in zip(names, groups):
        for task in group:
            task.out_file = name
    return names
