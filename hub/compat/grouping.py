"""Collapse per-layer repeats: 32 layers with the same v_proj mismatch become one
finding on ``model.layers.*.self_attn.v_proj`` that names the layers."""

from __future__ import annotations

import re

from hub.findings import Finding, sort_findings

_INDEX = re.compile(r"(?<=\.)(\d+)(?=\.|$)")


def _template(module: str | None) -> tuple[str | None, tuple[int, ...]]:
    if not module:
        return module, ()
    found = [int(x) for x in _INDEX.findall(module)]
    return _INDEX.sub("*", module), tuple(found)


def _ranges(numbers) -> str:
    nums = sorted(set(numbers))
    parts, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ",".join(parts)


def group_findings(findings: list[Finding]) -> list[Finding]:
    buckets: dict[tuple, list[tuple[Finding, tuple[int, ...]]]] = {}
    for f in findings:
        template, idx = _template(f.module)
        buckets.setdefault((f.code, f.severity, f.message, template), []).append((f, idx))
    out = []
    for (code, severity, message, template), items in buckets.items():
        if len(items) == 1:
            out.append(items[0][0])
            continue
        layers = [idx[0] for _, idx in items if idx]
        where = f"layers {_ranges(layers)}" if layers else f"{len(items)} modules"
        out.append(Finding(code, severity, template, f"{message} [{len(items)} modules, {where}]"))
    return sort_findings(out)
