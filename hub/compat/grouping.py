"""Collapse per-layer repeats: 32 layers with the same v_proj mismatch become one
finding on ``model.layers.*.self_attn.v_proj`` that names the layers.

Findings are grouped as they are produced (a :class:`Collector`), so a check of an
adapter for the wrong base makes a handful of Finding objects, not one per module;
module-path templates are cached because the same paths recur across adapters.
"""

from __future__ import annotations

import re

from hub.findings import Finding, finding, sort_findings

_INDEX = re.compile(r"(?<=\.)(\d+)(?=\.|$)")
_TEMPLATES: dict[str, tuple[str, int | None]] = {}
_MAX_CACHED = 200_000


def template(module: str) -> tuple[str, int | None]:
    """(path with every numeric segment as *, first numeric segment or None)."""
    hit = _TEMPLATES.get(module)
    if hit is None:
        found = _INDEX.findall(module)
        hit = (_INDEX.sub("*", module) if found else module, int(found[0]) if found else None)
        if len(_TEMPLATES) >= _MAX_CACHED:
            _TEMPLATES.clear()
        _TEMPLATES[module] = hit
    return hit


def _ranges(numbers) -> str:
    nums = set(numbers)
    lo, hi = min(nums), max(nums)
    if hi - lo + 1 == len(nums):                 # the usual case: one contiguous run
        return str(lo) if lo == hi else f"{lo}-{hi}"
    nums = sorted(nums)
    parts, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ",".join(parts)


class Collector:
    """Accumulates (code, module, message) and emits one Finding per group."""

    def __init__(self):
        self._groups: dict[tuple, list] = {}   # (code, template, message) -> [first module, count, layers]

    def add(self, code: str, module: str | None, message: str) -> None:
        tpl, layer = template(module) if module else (module, None)
        group = self._groups.get((code, tpl, message))
        if group is None:
            self._groups[(code, tpl, message)] = [module, 1, [] if layer is None else [layer]]
        else:
            group[1] += 1
            if layer is not None:
                group[2].append(layer)

    def extend(self, findings) -> None:
        for f in findings:
            self.add(f.code, f.module, f.message)

    def findings(self) -> list[Finding]:
        out = []
        for (code, tpl, message), (first, count, layers) in self._groups.items():
            if count == 1:
                out.append(finding(code, first, message))
            else:
                where = f"layers {_ranges(layers)}" if layers else f"{count} modules"
                out.append(finding(code, tpl, f"{message} [{count} modules, {where}]"))
        return sort_findings(out)


def group_findings(findings) -> list[Finding]:
    c = Collector()
    c.extend(findings)
    return c.findings()
