"""The browse index answers exactly as the SQL queries do (they are its oracle): same rows,
same order, same counts and positions, for filters and every sort, before and after edits."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from hub.listing.filters import ListFilter
from hub.listing.index import BrowseIndex
from hub.listing.rows import BROWSE_SORTS
from tests.test_tui_support import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "list"))


@pytest.fixture
def big(artifacts, hub_home):
    """600 synthetic rows (benchmarks/list/synth_registry.py) plus the real fixture adapters."""
    from synth_registry import build_registry as synth

    synth(hub_home, 600, seed=3)
    hub = build_registry(artifacts)
    hub.tag("gpt2-attn", add=["prod"])
    yield hub
    hub.close()


def filters(hub, rng: random.Random, n: int):
    rows = hub.browsing.list_rows(ListFilter())
    targets = sorted({t for r in rows for t in r.targets})
    tags = sorted({t for r in rows for t in r.tags})
    ranks = sorted({r.r for r in rows})
    alphas = sorted({r.alpha for r in rows})
    bases = ["llama", "Qwen", "QWEN/qwen2.5", "meta-llama/Llama-3.2-1B", "tiny", "7b", "nope", "%", "_"]
    texts = ["sql", "SQL", "r16", "fine-tune", "0001", "tiny", "-", "zz", "_", "%"]
    for _ in range(n):
        flt = ListFilter(sort=rng.choice(sorted(BrowseIndex.SORTS)), desc=rng.random() < 0.5)
        if rng.random() < 0.4:
            flt.search = rng.choice(texts)
        if rng.random() < 0.3:
            flt.base = rng.choice(bases)
        if rng.random() < 0.3:
            flt.rank = rng.choice(ranks + [3])
        if rng.random() < 0.15:
            flt.alpha = rng.choice(alphas)
        if rng.random() < 0.3:
            flt.targets = tuple(rng.sample(targets, rng.choice((1, 1, 2))))
        if rng.random() < 0.3:
            flt.tags = tuple(rng.sample(tags, rng.choice((1, 1, 2))))
        if rng.random() < 0.2:
            flt.flags = (rng.choice(("rslora", "dora", "fifo")),)
        if rng.random() < 0.1:
            flt.no_flags = (rng.choice(("rslora", "dora")),)
        yield flt


def assert_same(hub, index, flt):
    sql_rows = hub.browsing.list_rows(flt)
    assert index.list_rows(flt) == sql_rows, flt
    assert index.count_matching(flt) == hub.browsing.count_matching(flt) == len(sql_rows), flt
    for row in sql_rows[:3] + sql_rows[-2:]:
        assert index.position_of(row.name, flt) == hub.browsing.position_of(row.name, flt), (row.name, flt)
    page = ListFilter(**{**flt.__dict__, "limit": 7, "offset": 5})
    assert index.list_rows(page) == hub.browsing.list_rows(page), page


def test_every_sort_both_ways(big):
    index = big.browsing.browse_index()
    assert len(index) == big.count() == 604
    for key in BrowseIndex.SORTS:
        for desc in (False, True):
            assert_same(big, index, ListFilter(sort=key, desc=desc))
    # sorting by source needs every row's source columns: the browser asks SQL for that one
    assert set(BROWSE_SORTS) - BrowseIndex.SORTS == {"source"}
    assert not index.supports(ListFilter(sort="source"))


def test_random_filters_match_sql(big):
    index = big.browsing.browse_index()
    for flt in filters(big, random.Random(7), 300):
        assert_same(big, index, flt)


def test_refresh_after_tag_rename_remove(big):
    index = big.browsing.browse_index()
    big.tag("llama-plain", add=["fresh"], remove=["fixture"])
    big.rename("llama-rslora", "llama-rs")
    victim = big.browsing.list_rows(ListFilter(limit=1, offset=17))[0].name
    big.remove(victim)
    big.browsing.refresh_browse_index(index, ["llama-plain", "llama-rslora", "llama-rs", victim])
    for flt in (ListFilter(), ListFilter(tags=("fresh",)), ListFilter(tags=("fixture",)), ListFilter(search="rs"),
                ListFilter(sort="tags", desc=True), ListFilter(sort="created")):
        assert_same(big, index, flt)
    assert index.position_of(victim) is None and index.position_of("llama-rslora") is None


def test_typing_narrows_and_widens_like_sql(big):
    """Each keystroke's answer may reuse the previous one (a longer search matches a subset);
    backspacing, case changes and other fields changing must not."""
    index = big.browsing.browse_index()
    steps = ["s", "sq", "sql", "SQL", "sql-", "sql-r1", "sql-r", "sql-r16", "q", "qw", "qwen2-5-0-5b-sql"]
    for sort, desc, rank in (("name", False, None), ("size", True, None), ("tags", False, 16)):
        for text in steps:
            assert_same(big, index, ListFilter(search=text, sort=sort, desc=desc, rank=rank))


@pytest.mark.parametrize("batch", [None, 7])
def test_an_index_being_loaded_answers_exactly_what_its_prefix_holds(big, monkeypatch, batch):
    """Chunks come in name order: each partial index's name-ordered answers are a prefix of
    SQL's, its counts lower bounds, and a page it says it holds is SQL's page. With batch=7,
    chunks are added 7 entries per hold of the lock, the name order grown in place."""
    if batch:
        monkeypatch.setattr(BrowseIndex, "EXTEND_BATCH", batch)
    rng = random.Random(11)
    flts = [ListFilter(**{**f.__dict__, "sort": "name", "desc": False}) for f in filters(big, rng, 60)]
    flts += [ListFilter(), ListFilter(search="sql"), ListFilter(search="zz")]
    expected = {i: big.browsing.list_rows(f) for i, f in enumerate(flts)}
    seen = []

    def check(index):
        seen.append(len(index))
        assert not index.complete
        assert not index.supports(ListFilter(sort="size")) and not index.supports(ListFilter(desc=True))
        for i, flt in enumerate(flts):
            got = index.list_rows(flt)
            assert got == expected[i][:len(got)], flt
            assert index.count_matching(flt) == len(got) <= len(expected[i])
            page = ListFilter(**{**flt.__dict__, "limit": 7, "offset": 3})
            if index.has_page(page):
                assert index.list_rows(page) == expected[i][3:10], page
            for row in got[:2] + got[-1:]:
                assert index.position_of(row.name, flt) == expected[i].index(row), (row.name, flt)

    index = big.browsing.browse_index(on_chunk=check, first=50, chunk=120)
    assert seen == [50, 170, 290, 410, 530]      # then the last, short chunk completes it
    assert index.complete and len(index) == big.count() == 604
    for flt in flts[:20]:
        assert_same(big, index, flt)
    # sort keys and orders computed ahead (as the browser does once loaded, and when idle)
    # answer as SQL does
    index.prepare_keys()
    while index.warm_next():
        pass
    for key in sorted(BrowseIndex.SORTS):
        for desc in (False, True):
            assert_same(big, index, ListFilter(sort=key, desc=desc))
        assert_same(big, index, ListFilter(sort=key, rank=16))
