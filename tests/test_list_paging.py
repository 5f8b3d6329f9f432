"""`hub list` pages (--limit/--offset read ids from the listing index first) agree with
the unpaged query and with filtering the full records in Python."""

from __future__ import annotations

import os

import pytest

from hub.listing.filters import ListFilter
from hub.service import Hub
from tests.helpers import copy_adapter

KINDS = ("plain", "rslora", "dora", "gpt2", "embedding", "patterns", "qwen2", "all_linear", "modules_to_save")


@pytest.fixture()
def hub(artifacts, tmp_path, hub_home):
    root = tmp_path / "loras"
    for i, kind in enumerate(KINDS):
        copy_adapter(artifacts[kind][1], root / kind)
    with Hub(hub_home) as h:
        h.scan(root)
        for i, kind in enumerate(KINDS):
            h.tag(kind, add=["even" if i % 2 == 0 else "odd", *(["prod"] if i % 3 == 0 else [])])
        yield h


FILTERS = [
    ListFilter(),
    ListFilter(rank=8),
    ListFilter(rank=4, sort="size", desc=True),
    ListFilter(targets=("q_proj",), sort="alpha"),
    ListFilter(targets=("q_proj", "v_proj"), tags=("even",)),
    ListFilter(tags=("prod",), sort="created", desc=True),
    ListFilter(flags=("rslora",)),
    ListFilter(no_flags=("dora", "embed"), sort="params"),
    ListFilter(search="e", sort="layers", desc=True),
    ListFilter(base="llama", sort="base"),
    ListFilter(alpha=16.0, sort="r"),
]


def _expected(records, f: ListFilter) -> list[str]:
    keep = []
    for r in records:
        if f.rank is not None and r.r != f.rank:
            continue
        if f.alpha is not None and r.lora_alpha != f.alpha:
            continue
        if not set(f.targets) <= set(r.target_modules) or not set(f.tags) <= set(r.tags):
            continue
        if not set(f.flags) <= set(r.flags) or set(f.no_flags) & set(r.flags):
            continue
        if f.search and f.search not in r.name:
            continue
        if f.base and f.base not in (r.base_model or ""):
            continue
        keep.append(r)
    key = {"name": "name", "r": "r", "alpha": "lora_alpha", "size": "size_bytes", "created": "created_at",
           "base": "base_model", "layers": "num_layers", "params": "param_count"}[f.sort]
    keep.sort(key=lambda r: r.name)
    keep.sort(key=lambda r: getattr(r, key) or "", reverse=f.desc)
    return [r.name for r in keep]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: repr({k: v for k, v in vars(f).items() if v}))
def test_pages_agree_with_the_whole_list(hub, f):
    everything = hub.list(full=True)
    assert len(everything) == len(KINDS)
    whole = [r.name for r in hub.list(f)]
    assert whole == _expected(everything, f)
    for limit in (1, 2, 3):
        pages = []
        for offset in range(0, len(whole) + limit, limit):
            page = hub.list(ListFilter(**{**vars(f), "limit": limit, "offset": offset}))
            assert len(page) <= limit
            pages.extend(r.name for r in page)
        assert pages == whole


def test_summaries_leave_out_module_maps_and_full_records_keep_them(hub):
    summary = {r.name: r for r in hub.list(ListFilter(limit=50))}
    full = {r.name: r for r in hub.list(ListFilter(limit=50), full=True)}
    assert summary.keys() == full.keys()
    for name, rec in full.items():
        assert rec.modules and rec.modules == hub.get(name).modules
        assert summary[name].modules == {}
        # what a summary shows is the same either way
        assert (summary[name].flags, summary[name].tags, summary[name].target_modules) == \
            (rec.flags, rec.tags, rec.target_modules)
    assert "mts" in summary["modules_to_save"].flags


@pytest.mark.skipif(bool(os.environ.get("HUB_TEST_DATABASE_URL")), reason="the fast path reads SQLite files only")
def test_fast_path_returns_what_the_ordinary_path_returns(hub, tmp_path, monkeypatch):
    from hub.registry import fastread

    def fast_list(f, full):
        with fastread.open_text(None, None) as run:   # HUB_HOME's registry, no SQLAlchemy
            assert run is not None
            return fastread.list_records(run, f, full)

    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "sql-cache"))
    hub.tag("plain", add=["a.b:c+d/e"])
    for base in FILTERS:
        for f in (base, ListFilter(**{**vars(base), "limit": 2, "offset": 1})):
            for full in (False, True):
                assert fast_list(f, full) is None  # shape not compiled yet
                ordinary = hub.list(f, full=full)   # stores the shape's SQL for the next process
                fast = fast_list(f, full)
                assert fast is not None
                assert [r.to_dict() for r in fast] == [r.to_dict() for r in ordinary]
    # another value of a compiled shape is served too
    assert [r.name for r in fast_list(ListFilter(rank=4), False)] == [r.name for r in hub.list(ListFilter(rank=4))]


@pytest.mark.skipif(bool(os.environ.get("HUB_TEST_DATABASE_URL")), reason="the fast path reads SQLite files only")
def test_cli_prints_the_same_bytes_on_both_paths(hub, tmp_path, monkeypatch):
    from tests.helpers import run_cli

    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "sql-cache"))
    for args in (["list", "--json"], ["list"], ["list", "--target", "q_proj", "--limit", "3", "--json"],
                 ["list", "--tag", "prod", "--sort", "size", "--desc"]):
        first, second = run_cli(*args), run_cli(*args)  # ordinary path, then the fast path
        assert first.exit_code == second.exit_code == 0
        assert first.stdout == second.stdout and first.stdout
    assert list((tmp_path / "sql-cache").glob("read-sql-*.json"))


def test_hub_list_runs_the_cli_engine_and_sqlalchemy_agrees(hub, tmp_path, monkeypatch):
    """Hub.list (library and TUI callers) runs `hub list`'s engine: on SQLite the compiled
    SQL text on the connection's own sqlite3 handle (SQLAlchemy's run of the query is not
    called), stored for the next CLI process; SQLAlchemy running the same query, and the
    CLI's stdlib-sqlite3 runner, give the same records field by field."""
    from hub.registry import fastread, list_engine

    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "sql-cache"))
    on_sqlite = hub.db.dialect == "sqlite"
    expected = {}
    for base in FILTERS:
        for f in (base, ListFilter(**{**vars(base), "limit": 2, "offset": 1})):
            for full in (False, True):
                with hub.db.read() as conn:
                    expected[repr(f), full] = [r.to_dict() for r in list_engine.by_alchemy(conn, f, full)]

    def no_alchemy(*args, **kwargs):
        raise AssertionError("Hub.list took SQLAlchemy's path on SQLite")

    if on_sqlite:
        monkeypatch.setattr(list_engine, "by_alchemy", no_alchemy)
    for base in FILTERS:
        for f in (base, ListFilter(**{**vars(base), "limit": 2, "offset": 1})):
            for full in (False, True):
                assert [r.to_dict() for r in hub.list(f, full=full)] == expected[repr(f), full], f
                if on_sqlite:   # a fresh CLI process finds the shape Hub.list compiled, on disk
                    monkeypatch.setattr(fastread, "_CACHES", {})
                    with fastread.open_text(None, None) as run:
                        assert run is not None
                        cli = fastread.list_records(run, f, full)
                    assert cli is not None and [r.to_dict() for r in cli] == expected[repr(f), full], f
    assert not on_sqlite or list((tmp_path / "sql-cache").glob("read-sql-*.json"))
