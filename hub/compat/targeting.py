"""Replay PEFT's module matching (peft.tuners.tuners_utils.check_target_module_exists)
on a base's module table: which modules would ``PeftModel.from_pretrained`` wrap?

Knowing that is how a check sees the silent failures: modules PEFT wraps without
weights in the file (they stay at their initialisation), and weights in the file for
modules PEFT never wraps (dropped without a word).
"""

from __future__ import annotations

import re
from typing import Mapping

from hub import patterns
from hub.compat.specs import BaseSpec
from hub.formats.base_model import OUTPUT_HEADS

_ADAPTABLE = ("linear", "conv1d", "embedding")


def _layer_of(key: str, layers_pattern) -> int | None:
    # PEFT takes the *first* numbered segment after the layers container
    if not layers_pattern:
        m = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
        return int(m["idx"]) if m else None
    for pattern in [layers_pattern] if isinstance(layers_pattern, str) else layers_pattern:
        m = patterns.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key)   # untrusted: time-bounded
        if m:
            return int(m["idx"])
    return None


def _excluded(config: Mapping, key: str) -> bool:
    exclude = config.get("exclude_modules")
    if exclude:
        if isinstance(exclude, str):
            if patterns.fullmatch(exclude, key):
                return True
        elif key in exclude or any(key.endswith(f".{e}") for e in exclude):
            return True
    for m in config.get("modules_to_save") or ():
        if patterns.match(rf"(^|.*\.){m}($|\..*)", key):
            return True
    return False


def _frozen(value):
    if isinstance(value, (list, tuple, set)):
        return tuple(sorted(map(str, value))) if isinstance(value, set) else tuple(value)
    return value


def wrapped_modules(config: Mapping, base: BaseSpec) -> frozenset[str] | None:
    """Base module paths PEFT would put a LoRA layer on, or None when the config has no
    target_modules (PEFT would fall back to a per-architecture default we do not replay).
    Memoised per base: adapters of one training recipe share their targeting config."""
    key = ("wrapped",) + tuple(_frozen(config.get(k)) for k in (
        "target_modules", "layers_to_transform", "layers_pattern", "exclude_modules", "modules_to_save"))
    if key not in base.memo:
        found = _wrapped(config, base)
        base.memo[key] = None if found is None else frozenset(found)
    return base.memo[key]


def _wrapped(config: Mapping, base: BaseSpec) -> set[str] | None:
    targets = config.get("target_modules")
    if targets is None:
        return None
    candidates: set[str] = set()
    if isinstance(targets, str):
        if targets == "all-linear":
            candidates = {p for p, m in base.modules.items()
                          if m.kind in ("linear", "conv1d") and p.rsplit(".", 1)[-1] not in OUTPUT_HEADS}
        else:
            candidates = {p for p, m in base.modules.items()
                          if m.kind in _ADAPTABLE and patterns.fullmatch(targets, p)}
        return {p for p in candidates if not _excluded(config, p)}
    index = base.suffix_index
    for target in targets:
        candidates.update(index.get(target, ()))
        if base.strip_first and "." in target:          # target written with the wrapper prefix
            candidates.update(index.get(target.split(".", 1)[1], ()))
    layers = config.get("layers_to_transform")
    if layers is not None and (layers != [] if isinstance(layers, list) else True):
        wanted = {layers} if isinstance(layers, int) else set(layers)
        # PEFT sees the wrapper prefix that stripped checkpoints lack; give the regex one
        prefix = "_." if base.strip_first else ""
        candidates = {p for p in candidates if _layer_of(prefix + p, config.get("layers_pattern")) in wanted}
    return {p for p in candidates if base.modules[p].kind in _ADAPTABLE and not _excluded(config, p)}
