"""The compact data compat rules run on, built either from files (AdapterInfo,
BaseModelInfo) or straight from registry rows (JSON columns), so that checking an
adapter against a registered base never re-reads a file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Mapping, NamedTuple

from hub.compat.grouping import template
from hub.formats import base_model as bm


class LoraModule(NamedTuple):
    """hub.inspect.ModuleInfo's fields as a tuple: ~5x cheaper to build from registry JSON
    than the frozen dataclass, and read the same way (m.r, m.in_features, ...)."""
    r: int
    alpha: float
    in_features: int
    out_features: int
    kind: str = "linear"
    scaling: float = 1.0
    dora: bool = False
    lora_bias: bool = False

class RowModules(Mapping):
    """An adapter's module map straight from the registry's modules_json: shape checks read
    the raw dicts (no object per module); LoraModule rows are built only when asked for."""

    __slots__ = ("_raw", "_built")

    def __init__(self, raw: dict[str, dict]):
        self._raw = raw
        self._built: dict[str, LoraModule] = {}

    def __getitem__(self, path: str) -> LoraModule:
        row = self._built.get(path)
        if row is None:
            m = self._raw[path]
            row = self._built[path] = LoraModule(
                m["r"], m["alpha"], m["in_features"], m["out_features"], m.get("kind", "linear"),
                m.get("scaling", 1.0), m.get("dora", False), m.get("lora_bias", False))
        return row

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, path) -> bool:
        return path in self._raw

    def shape_rows(self) -> Iterator[tuple[str, str, int, int]]:
        for path, m in self._raw.items():
            yield path, m.get("kind", "linear"), m["in_features"], m["out_features"]

    def any_flag(self, flag: str) -> bool:
        return any(m.get(flag) for m in self._raw.values())


def shape_rows(modules: Mapping) -> Iterator[tuple[str, str, int, int]]:
    """(path, kind, in_features, out_features) for every adapted module."""
    if isinstance(modules, RowModules):
        return modules.shape_rows()
    return ((p, m.kind, m.in_features, m.out_features) for p, m in modules.items())


def any_flag(modules: Mapping, flag: str) -> bool:
    if isinstance(modules, RowModules):
        return modules.any_flag(flag)
    return any(getattr(m, flag) for m in modules.values())


# base_model_name_or_path values that name nothing usable
_USELESS_BASE = re.compile(r"^(|\.{1,2}/?|none|null|/kaggle/.*|/content/.*|\./.*|\.\./.*)$", re.I)


@dataclass(frozen=True)
class AdapterSpec:
    name: str | None
    modules: Mapping[str, "LoraModule"]          # base module path -> rank/alpha/shape (or ModuleInfo)
    saved_tensors: Mapping[str, tuple]           # full base parameters the adapter replaces -> shape
    config: Mapping                              # adapter_config.json as stored
    dtype: str | None = None

    @classmethod
    def from_info(cls, info, name: str | None = None) -> "AdapterSpec":
        return cls(name or info.path, info.modules, info.saved_tensors, info.config, info.dtype)

    @classmethod
    def from_json(cls, name: str | None, config_json: str | dict, modules_json: str | dict,
                  saved_tensors_json: str | dict = "{}", dtype: str | None = None) -> "AdapterSpec":
        """From the registry's adapters row (config_json, modules_json, saved_tensors_json)."""
        config = json.loads(config_json) if isinstance(config_json, str) else config_json
        modules = json.loads(modules_json) if isinstance(modules_json, str) else modules_json
        saved = json.loads(saved_tensors_json) if isinstance(saved_tensors_json, str) else saved_tensors_json
        return cls(name, RowModules(modules),
                   {k: tuple(v) for k, v in (saved or {}).items()}, config, dtype)

    # -- config, read the way PEFT reads it --------------------------------------------
    @property
    def r(self) -> int:
        return int(self.config.get("r") or 8)

    @property
    def lora_alpha(self) -> float:
        return float(self.config.get("lora_alpha") or 8)

    @property
    def use_rslora(self) -> bool:
        return bool(self.config.get("use_rslora"))

    @property
    def use_dora(self) -> bool:
        return bool(self.config.get("use_dora")) or any_flag(self.modules, "dora")

    @property
    def lora_bias(self) -> bool:
        return bool(self.config.get("lora_bias")) or any_flag(self.modules, "lora_bias")

    @property
    def fan_in_fan_out(self) -> bool:
        return bool(self.config.get("fan_in_fan_out"))

    @property
    def modules_to_save(self) -> tuple[str, ...]:
        return tuple(self.config.get("modules_to_save") or ())

    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def base_name_usable(self) -> bool:
        return bool(self.base_model) and not _USELESS_BASE.match(str(self.base_model).strip())

    @property
    def max_rank(self) -> int:
        return max((m.r for m in self.modules.values()), default=self.r)

    @cached_property
    def layer_indices(self) -> tuple[int, ...]:
        return tuple(sorted({i for p in self.modules if (i := template(p)[1]) is not None}))


@dataclass(frozen=True)
class BaseSpec:
    name: str | None
    shapes: Mapping[str, tuple]                  # tensor name -> (logical shape, dtype)
    config: Mapping = field(default_factory=dict)
    model_type: str | None = None
    architecture: str | None = None
    dtype: str | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    tie_word_embeddings: bool = False
    quantization: Mapping | None = None
    path: str | None = None
    shape_signature: str | None = None
    size_bytes: int = 0
    quant_scheme: Mapping | None = None          # bitsandbytes: hub.formats.bnb.describe()

    @classmethod
    def from_info(cls, info: bm.BaseModelInfo, name: str | None = None) -> "BaseSpec":
        return cls(name or info.path, info.shape_table(), info.config, info.model_type, info.architecture,
                   info.dtype, info.vocab_size, info.hidden_size, info.num_layers, info.tie_word_embeddings,
                   info.quantization, info.path, info.shape_signature, info.size_bytes, info.quant_scheme)

    @classmethod
    def from_row(cls, row) -> "BaseSpec":
        """From a base_models row (mapping or Row with the schema's column names)."""
        get = row.get if isinstance(row, Mapping) else lambda k, d=None: getattr(row, k, d)
        shapes = {k: (tuple(v[0]), v[1]) for k, v in json.loads(get("shapes_json")).items()}
        quant = get("quantization_json")
        scheme = get("quant_scheme_json")
        return cls(get("name"), shapes, json.loads(get("config_json") or "{}"), get("model_type"),
                   get("architecture"), get("dtype"), get("vocab_size"), get("hidden_size"), get("num_layers"),
                   bool(get("tie_word_embeddings")), json.loads(quant) if quant else None, get("path"),
                   get("shape_signature"), get("size_bytes") or 0, json.loads(scheme) if scheme else None)

    @staticmethod
    def shapes_json(info: bm.BaseModelInfo) -> str:
        return json.dumps({k: [list(s), d] for k, (s, d) in sorted(info.shape_table().items())})

    # -- derived tables (computed once per spec; a batch check reuses them) --------------
    @cached_property
    def modules(self) -> dict[str, bm.BaseModule]:
        return bm.module_table(self.shapes, self.model_type, self.quantization,
                               self.tie_word_embeddings, self.vocab_size)

    @cached_property
    def input_embedding(self) -> str | None:
        return bm.input_embedding(self.modules, self.vocab_size)

    @cached_property
    def memo(self) -> dict:
        """Per-base memo for rule results that depend only on shapes (see adapter_base)."""
        return {}

    @cached_property
    def quant_method(self) -> str | None:
        return bm.quant_method(self.quantization)

    @cached_property
    def suffix_index(self) -> dict[str, tuple[str, ...]]:
        """Every dotted suffix of every module path -> the paths ending in it, so PEFT's
        ``key == t or key.endswith('.' + t)`` becomes one dict lookup per target."""
        index: dict[str, list[str]] = {}
        for path in self.modules:
            parts = path.split(".")
            for i in range(len(parts)):
                index.setdefault(".".join(parts[i:]), []).append(path)
        return {k: tuple(v) for k, v in index.items()}

    @cached_property
    def strip_first(self) -> bool:
        """Checkpoints saved from the bare model (GPT-2's ``h.0...``) lack the wrapper
        prefix (``transformer.``) that PEFT's module paths carry."""
        return not any("." in p and p.split(".", 1)[0] in ("model", "transformer") for p in self.modules)

    def resolve(self, path: str) -> str | None:
        """The base module path an adapter module path refers to, or None."""
        if path in self.modules:
            return path
        if self.strip_first and "." in path:
            tail = path.split(".", 1)[1]
            if tail in self.modules:
                return tail
        return None

    def resolve_tensor(self, name: str) -> tuple[str, tuple] | None:
        """(tensor that holds it, shape) for a full parameter name, following tied heads."""
        candidates = [name]
        if self.strip_first and "." in name:
            candidates.append(name.split(".", 1)[1])
        for cand in candidates:
            if cand in self.shapes:
                return cand, tuple(self.shapes[cand][0])
            module = self.modules.get(cand.rsplit(".", 1)[0])
            if module is not None and module.tied_to and cand.endswith(".weight"):
                return module.tied_to, tuple(self.shapes[module.tied_to][0])
        return None

    @cached_property
    def layer_count(self) -> int | None:
        found = {i for p in self.modules if (i := template(p)[1]) is not None}
        counted = max(found) + 1 if found else None
        return self.num_layers or counted

    @cached_property
    def head_dim(self) -> int | None:
        cfg = self.config.get("text_config") if isinstance(self.config.get("text_config"), dict) else self.config
        if cfg.get("head_dim"):
            return int(cfg["head_dim"])
        heads = cfg.get("num_attention_heads") or cfg.get("n_head")
        return (self.hidden_size // heads) if heads and self.hidden_size else None
