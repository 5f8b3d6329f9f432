"""Every finding code hub emits is declared once, in hub.findings.CODES, with one severity,
and docs/findings.md lists exactly the catalog. The emitters are found by walking hub/'s
source with ast, so a new `finding("X", ...)` anywhere fails here until X is catalogued."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hub.findings import CODES, SEVERITIES, finding, render_docs

REPO = Path(__file__).resolve().parents[1]
HUB = REPO / "hub"


def _calls(name: str):
    """(file, call node) for every call of a function or class called ``name`` in hub/."""
    for path in sorted(HUB.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if called == name:
                    yield path.relative_to(REPO), node


CODE_SHAPE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")


def _code(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_SHAPE.fullmatch(node.value):
        return node.value
    return None


def emitted_codes() -> dict[str, list[str]]:
    """code -> where it is emitted (file:line): the code given to ``finding(CODE, ...)``, to
    compat's grouping ``Collector.add(CODE, ...)``, or returned as ``(CODE, message)`` by a
    rule helper that feeds one of those."""
    out: dict[str, list[str]] = {}
    sites = [(p, c.args[0] if c.args else None, c.lineno) for p, c in (*_calls("finding"), *_calls("add"))]
    for path in sorted(HUB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and node.value.elts:
                sites.append((path.relative_to(REPO), node.value.elts[0], node.lineno))
    for path, first, line in sites:
        if (code := _code(first)) is not None:
            out.setdefault(code, []).append(f"{path}:{line}")
    return out


def test_every_emitted_code_is_in_the_catalog():
    emitted = emitted_codes()
    assert len(emitted) > 60   # the walk sees the emitters (inspect, compat, merge, combine)
    missing = {code: where for code, where in emitted.items() if code not in CODES}
    assert not missing, f"emitted but not in hub.findings.CODES: {missing}"


def test_every_catalog_code_is_emitted_somewhere():
    assert set(CODES) - set(emitted_codes()) == set()


def test_findings_are_built_only_through_the_catalog():
    """A Finding built by hand could carry any severity; outside hub/findings.py it may only
    be rebuilt from a stored dict (``Finding(**row)``)."""
    bad = [f"{path}:{call.lineno}" for path, call in _calls("Finding")
           if path != Path("hub/findings.py") and (call.args or any(k.arg for k in call.keywords))]
    assert bad == []
    # and nobody passes a severity next to a code
    assert [f"{p}:{c.lineno}" for p, c in _calls("finding") if len(c.args) + len(c.keywords) != 3] == []


def test_one_severity_per_code():
    for code, c in CODES.items():
        assert c.severity in SEVERITIES, code
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", code), code
        assert finding(code, None, "m").severity == c.severity


def test_findings_doc_lists_exactly_the_catalog():
    doc = (REPO / "docs" / "findings.md").read_text()
    assert doc == render_docs()
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (\w+) \|", doc, flags=re.M)
    assert dict(rows) == {code: c.severity for code, c in CODES.items()}
    assert len(rows) == len(CODES)
