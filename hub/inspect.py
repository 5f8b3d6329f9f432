"""Adapter folder -> AdapterInfo, from the config and the safetensors header only.

No tensor is materialised and nothing is unpickled; files are hashed in the same
pass that reads them (optionally copying them through ``sink_factory``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from hub import patterns
from hub.errors import InvalidAdapter, UnsafeFormat
from hub.findings import Finding, finding, has_errors
from hub.formats import adapter_config as cfgmod
from hub.formats.adapter_weights import PICKLE_NAMES, WEIGHTS_NAME, layer_index, split_keys, strip_prefix
from hub.formats.safetensors_header import (ADAPTER, SafetensorsHeader, hash_file, read_header, read_header_and_hash,
                                            stream_header_and_hash)

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
MANIFEST_FILES = (cfgmod.CONFIG_NAME, WEIGHTS_NAME)


@dataclass(frozen=True)
class ModuleInfo:
    r: int
    alpha: float
    in_features: int
    out_features: int
    kind: str = "linear"          # linear | embedding
    scaling: float = 1.0
    dora: bool = False
    lora_bias: bool = False


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    config: dict
    peft_type: str
    task_type: str | None
    base_model: str | None
    revision: str | None
    r: int
    lora_alpha: float
    use_rslora: bool
    use_dora: bool
    fan_in_fan_out: bool
    lora_bias: bool
    target_modules: tuple[str, ...]         # sorted suffixes of the modules actually adapted
    modules: dict[str, ModuleInfo]          # base module path -> rank/alpha/shape
    saved_tensors: dict[str, tuple]         # full base parameters the adapter replaces -> shape
    num_layers: int
    layer_indices: tuple[int, ...]
    dtype: str
    param_count: int
    has_embedding_lora: bool
    files: tuple[FileInfo, ...]
    size_bytes: int
    sha256: str                             # manifest hash of config + weights: the adapter's identity
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    unknown_keys: tuple[str, ...] = ()

    @property
    def scaling(self) -> float:
        return cfgmod.scaling(self.lora_alpha, self.r, self.use_rslora)

    @property
    def modules_to_save(self) -> tuple[str, ...]:
        return tuple(self.config.get("modules_to_save") or ())

    def file(self, name: str) -> FileInfo | None:
        return next((f for f in self.files if f.name == name), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["findings"] = [f.to_dict() for f in self.findings]
        d["files"] = [asdict(f) for f in self.files]
        d["saved_tensors"] = {k: list(v) for k, v in self.saved_tensors.items()}
        return d


def manifest_sha256(files) -> str:
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        if f.name in MANIFEST_FILES:
            digest.update(f"{f.name}\0{f.sha256}\n".encode())
    return digest.hexdigest()


def _adapter_files(folder: Path) -> list[Path]:
    """Top-level regular files worth keeping; pickles and hidden files are skipped."""
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.suffix in PICKLE_SUFFIXES:
            continue
        if entry.is_symlink():
            target = entry.resolve()
            if folder.resolve() not in target.parents:
                raise InvalidAdapter(f"{entry.name} is a symlink pointing outside the adapter folder", str(entry),
                                     "copy the real file into the folder or remove the link")
        if entry.is_file():
            out.append(entry)
    return out


def is_adapter_folder(path: Path) -> bool:
    return (path / cfgmod.CONFIG_NAME).is_file()


def inspect_adapter(folder: str | os.PathLike,
                    sink_factory: Callable[[str], Callable[[bytes], None] | None] | None = None,
                    check_values: bool = False, hash_files: bool = True) -> AdapterInfo:
    """Read ``folder`` as a PEFT LoRA adapter. Raises InvalidAdapter (and subclasses).

    ``hash_files=False`` reads the config and the safetensors header only (no tensor data),
    for content the registry already holds under its hash (e.g. a combine's parents); the
    info's sha256 fields are then empty.
    ``check_values`` also counts NaN/Inf in the tensor data (integer bit tests on the
    chunks being hashed; an error finding per tensor with any)."""
    folder = Path(folder)
    where = str(folder)
    if not folder.exists():
        raise InvalidAdapter("adapter folder does not exist", where, "check the path")
    if not folder.is_dir():
        raise InvalidAdapter("not a folder", where, "pass the adapter's folder, not a file")
    config = cfgmod.read_config(folder / cfgmod.CONFIG_NAME)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = [n for n in PICKLE_NAMES if (folder / n).exists()]
        if pickles:
            raise UnsafeFormat(
                f"adapter has only pickle weights ({pickles[0]})", where,
                "hub never unpickles; re-save it with PeftModel.save_pretrained(..., safe_serialization=True)",
            )
        raise InvalidAdapter(f"{WEIGHTS_NAME} is missing", where, "the folder needs the adapter weights file")

    log.debug("inspecting %s (store copy: %s, value scan: %s)", where, sink_factory is not None, check_values)
    files: list[FileInfo] = []
    header: SafetensorsHeader | None = None
    bad: dict[str, int] | None = {} if check_values else None  # counted while hashing: one read
    for path in _adapter_files(folder):
        sink = sink_factory(path.name) if sink_factory else None
        if not hash_files:
            if path.name == WEIGHTS_NAME:
                header = read_header(path, ADAPTER)
            digest = ""
        elif path.name == WEIGHTS_NAME:
            header, digest = read_header_and_hash(path, sink, nonfinite=bad)
        else:
            digest = hash_file(path, sink)
        files.append(FileInfo(path.name, path.stat().st_size, digest))
        log.debug("%s: %s bytes, sha256 %s", path.name, files[-1].size, digest)
    assert header is not None
    info = _checked_info(where, config, header, files, bad)
    return info if hash_files else replace(info, sha256="")


def inspect_stream(where: str, config_text: str, weights, size: int,
                   sink_factory: Callable[[str], Callable[[bytes], None]], check_values: bool = True) -> AdapterInfo:
    """The AdapterInfo of an adapter folder being written (a combination's result), with the
    checks inspect_adapter makes of a folder read from disk: the config parsed and schema-checked
    from ``config_text``, the safetensors header validated, NaN/Inf counted (``check_values``).
    ``weights`` are adapter_model.safetensors' buffers in order, its header first, ``size`` bytes
    in all (hub.formats.safetensors_layout). Each file goes to ``sink_factory(name)`` and is
    hashed as it is written (hub.formats.safetensors_header.stream_header_and_hash): the
    hashes are those of exactly the bytes written, and nothing is read back."""
    import hashlib

    config = cfgmod.parse_config(config_text, f"{where}/{cfgmod.CONFIG_NAME}")
    raw = config_text.encode()
    sink_factory(cfgmod.CONFIG_NAME)(raw)
    files = [FileInfo(cfgmod.CONFIG_NAME, len(raw), hashlib.sha256(raw).hexdigest())]
    bad: dict[str, int] | None = {} if check_values else None
    header, digest = stream_header_and_hash(weights, size, f"{where}/{WEIGHTS_NAME}", sink_factory(WEIGHTS_NAME),
                                            nonfinite=bad)
    files.append(FileInfo(WEIGHTS_NAME, size, digest))
    # --allow-nonfinite is add's; what is written here is computed from registered parents
    return _checked_info(where, config, header, files, bad,
                         "(a parent holds NaN/Inf, or the result overflowed its dtype: see `hub show` of the parents)")


def _checked_info(where: str, config: dict, header: SafetensorsHeader, files: list[FileInfo],
                  nonfinite: dict[str, int] | None,
                  nonfinite_hint: str = "(hub add --allow-nonfinite registers it anyway)") -> AdapterInfo:
    """build_info, with an error finding per tensor holding NaN/Inf (``nonfinite_hint`` says
    what to do about it)."""
    with patterns.budget():   # the config's regexes, all of them together
        info = build_info(where, config, header, files)
    if nonfinite:
        extra = tuple(finding("NONFINITE_VALUES", strip_prefix(name),
                              f"{n} NaN/Inf value(s) in this tensor; the adapter is broken {nonfinite_hint}")
                      for name, n in sorted(nonfinite.items()))
        info = replace(info, findings=extra + info.findings)
    return info


def build_info(where: str, config: dict, header: SafetensorsHeader, files: list[FileInfo]) -> AdapterInfo:
    findings: list[Finding] = []
    raw_modules, full = split_keys(header.tensors)
    if not raw_modules:
        raise InvalidAdapter("adapter weights contain no LoRA tensors", f"{where}/{WEIGHTS_NAME}",
                             "is this a PEFT LoRA adapter? re-save it with PEFT")
    use_rslora = bool(config.get("use_rslora"))
    use_dora = bool(config.get("use_dora"))
    modules: dict[str, ModuleInfo] = {}
    dtypes: set[str] = set()
    for path, raw in sorted(raw_modules.items()):
        t = raw.tensors
        if "A" not in t or "B" not in t:
            missing = "lora_B" if "A" in t else "lora_A"
            findings.append(finding("TENSOR_PAIR_MISSING", path,
                                    f"{missing} is missing for this module; the adapter file is incomplete"))
            continue
        a, b = header.tensors[t["A"]], header.tensors[t["B"]]
        dtypes.update((a.dtype, b.dtype))
        if len(a.shape) != 2 or len(b.shape) != 2:
            findings.append(finding("UNSUPPORTED_LAYER", path,
                                    f"LoRA factors of rank {len(a.shape)} (conv layers) are not supported"))
            continue
        embedding = raw.is_embedding
        r_a, in_f = a.shape
        out_f, r_b = b.shape
        if r_a != r_b:
            findings.append(finding("RANK_MISMATCH", path,
                                    f"lora_A has rank {r_a} but lora_B has rank {r_b}; the file is inconsistent"))
            continue
        expected_r = cfgmod.module_rank(config, path)
        if r_a != expected_r:
            findings.append(finding("CONFIG_RANK_MISMATCH", path,
                                    f"config says r={expected_r} but the tensors have rank {r_a}; "
                                    "PEFT would fail with a size mismatch: fix r or rank_pattern"))
        alpha = cfgmod.module_alpha(config, path)
        if "magnitude" in t:
            mag = header.tensors[t["magnitude"]]
            if mag.shape != (out_f,):
                findings.append(finding("DORA_SHAPE", path,
                                        f"DoRA magnitude has shape {list(mag.shape)}, expected [{out_f}]"))
        elif use_dora and not embedding:
            findings.append(finding("DORA_MISSING", path,
                                    "use_dora is set but the module has no lora_magnitude_vector"))
        if "magnitude" in t and not use_dora:
            findings.append(finding("DORA_UNDECLARED", path,
                                    "module has a DoRA magnitude but use_dora is false; PEFT will ignore it"))
        modules[path] = ModuleInfo(
            r=r_a, alpha=alpha, in_features=in_f, out_features=out_f,
            kind="embedding" if embedding else "linear",
            scaling=cfgmod.scaling(alpha, r_a, use_rslora),
            dora="magnitude" in t, lora_bias="B_bias" in t,
        )
    saved = {name: header.tensors[key].shape for name, key in sorted(full.items())}

    suffixes = sorted({p.rsplit(".", 1)[-1] for p in modules})
    targets = config.get("target_modules")
    if isinstance(targets, list):
        for target in sorted(set(targets)):
            if not any(p == target or p.endswith("." + target) for p in modules):
                findings.append(finding("TARGET_WITHOUT_TENSORS", target,
                                        f"target module {target!r} is in the config but has no tensors"))
    elif isinstance(targets, str) and targets != "all-linear":
        if not any(patterns.fullmatch(targets, p) for p in modules):
            # PEFT fullmatches this regex to choose where LoRA goes: the tensors would never load
            findings.append(finding("TARGET_REGEX_UNMATCHED", None,
                                    f"target_modules regex {targets!r} matches none of the adapted modules"))
    for key in ("rank_pattern", "alpha_pattern"):
        for pattern in (config.get(key) or {}):
            if not any(cfgmod.pattern_key([pattern], p) for p in modules):
                findings.append(finding("PATTERN_UNUSED", pattern,
                                        f"{key} entry {pattern!r} matches no adapted module"))
    unknown = cfgmod.unknown_keys(config)
    for key in unknown:
        findings.append(finding("CONFIG_UNKNOWN_KEY", None,
                                f"unknown config key {key!r} kept as is"))
    if config.get("layer_replication"):
        findings.append(finding("LAYER_REPLICATION_USED", None,
                                "layer_replication changes the model's structure; merging is refused"))

    layers = sorted({i for p in modules if (i := layer_index(p)) is not None})
    param_count = sum(e.numel for e in header.tensors.values())
    size = sum(f.size for f in files)
    return AdapterInfo(
        path=where, config=config, peft_type=config.get("peft_type") or "LORA", task_type=config.get("task_type"),
        base_model=config.get("base_model_name_or_path"), revision=config.get("revision"),
        r=int(config["r"]), lora_alpha=float(config["lora_alpha"]), use_rslora=use_rslora, use_dora=use_dora,
        fan_in_fan_out=bool(config.get("fan_in_fan_out")), lora_bias=bool(config.get("lora_bias")),
        target_modules=tuple(suffixes), modules=modules, saved_tensors=saved,
        num_layers=len(layers), layer_indices=tuple(layers),
        dtype=next(iter(dtypes)) if len(dtypes) == 1 else "mixed",
        param_count=param_count, has_embedding_lora=any(m.kind == "embedding" for m in modules.values()),
        files=tuple(files), size_bytes=size, sha256=manifest_sha256(files),
        findings=tuple(findings), unknown_keys=tuple(unknown),
    )


def refuse_on_errors(info: AdapterInfo) -> None:
    """Registration refuses adapters that PEFT itself could not load."""
    if has_errors(info.findings):
        errors = [f for f in info.findings if f.severity == "error"]
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidAdapter(f"{first.message}{more}", f"{info.path}: {first.module}",
                             "fix the adapter; `hub show` lists findings of registered adapters")
