"""Findings: what a check or an inspection noticed, in one stable shape.

``code`` is stable (listed in docs/findings.md) so scripts can match on it;
``message`` says what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error | warning | info
    module: str | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def has_errors(findings) -> bool:
    return any(f.severity == "error" for f in findings)


def sort_findings(findings):
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.severity, 9), f.code, f.module or ""))
