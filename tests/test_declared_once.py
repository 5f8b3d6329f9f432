"""Facts declared once, held by walking hub/'s source: the progress protocol, the flag
list, and name validation."""

from __future__ import annotations

import ast
from pathlib import Path

from hub.flags import DECLARED, FLAG_LABELS, FLAG_MEANINGS, FLAGS, flags_of
from hub.records import AdapterRecord

REPO = Path(__file__).resolve().parents[1]


def _trees():
    for path in sorted((REPO / "hub").rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text())


def test_one_progress_protocol():
    """Progress is declared in hub/progress.py only, and no signature spells out another one."""
    declared, spelled = [], []
    for rel, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "Progress"
                                                    for t in node.targets):
                declared.append(rel)
            if isinstance(node, ast.Subscript) and ast.unparse(node).startswith("Callable[[int, int"):
                spelled.append(f"{rel}:{node.lineno}")
    assert declared == ["hub/progress.py"]
    assert spelled == ["hub/progress.py:9"]


def test_one_flag_list():
    """No literal in hub/ other than hub/flags.py lists several flag names."""
    names = set(FLAGS)
    found = []
    for rel, tree in _trees():
        if rel == "hub/flags.py":
            continue
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else \
                node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
            hits = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
            if len(hits) >= 3:
                found.append(f"{rel}:{node.lineno}")
    assert found == []
    assert list(FLAG_MEANINGS) == list(FLAG_LABELS) == list(FLAGS) == [f.name for f in DECLARED]


def test_flags_name_real_columns_and_record_fields():
    from hub.registry.adapters import FLAG_COLUMNS
    from hub.registry.schema import adapters

    assert list(FLAG_COLUMNS) == list(FLAGS)
    for f in DECLARED:
        assert f.column in adapters.c and f.field in AdapterRecord.__dataclass_fields__, f
    rec = AdapterRecord(id=1, name="a", sha256="0" * 64, base_model=None, base=None, peft_type="LORA",
                        task_type=None, r=4, lora_alpha=8.0, scaling=2.0, use_rslora=True, use_dora=False,
                        fan_in_fan_out=True, lora_bias=False, has_embedding_lora=False, target_modules=[],
                        modules_to_save=["lm_head"], num_layers=1, num_modules=1, param_count=1, size_bytes=1,
                        dtype=None, tags=[], storage="copy", path=None, source={}, created_at="")
    assert rec.flags == flags_of(rec) == ["rslora", "mts", "fifo"]


def test_the_filter_language_accepts_every_flag_name_and_label():
    from hub.listing.query import parse_query

    for f in DECLARED:
        assert parse_query(f"is:{f.name}").filter.flags == (f.name,)
        assert parse_query(f"is:{f.label}").filter.flags == (f.name,)


def test_names_are_validated_by_one_function():
    """hub.names.check_text is the one validator of what users name things (adapters, tags,
    bases, aliases, Hub repo ids): outside hub/names.py, only these raise an "invalid ..."
    error themselves, and none of them validates a name's characters."""
    found = set()
    for rel, tree in _trees():
        if rel == "hub/names.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None and "'invalid " in ast.unparse(node.exc):
                found.add((rel, ast.unparse(node.exc).split("'")[1].split("{text")[0]))
    assert found == {
        ("hub/refs.py", "invalid {what} "),           # not a string at all / NAME@ALIAS restated with the grammar
        ("hub/sync/spec.py", "invalid revision {shown!r}"),   # git ref rules, not a name
        ("hub/sync/spec.py", "invalid subfolder {subfolder!r}"),   # a relative path
    }
