"""The filter language: one parser (hub.listing.query) behind `hub list QUERY` and the TUI's
filter box; the same filter as `hub list --base … --rank …`, and the browse index agrees."""

from __future__ import annotations

import json

import pytest

from hub.errors import UsageError
from hub.listing.filters import ListFilter
from hub.listing.query import format_query, parse_query
from tests.helpers import cli_json, run_cli
from tests.test_tui_support import build_registry


def test_every_key_parses_into_the_filter():
    q = parse_query("base:llama r:16 target:q_proj,v_proj tag:prod flag:dora -flag:rslora fits:tiny alpha:32 "
                    'hello "two words"')
    f = q.filter
    assert (f.base, f.rank, f.alpha, f.targets, f.tags, f.flags, f.no_flags) == (
        "llama", 16, 32.0, ("q_proj", "v_proj"), ("prod",), ("dora",), ("rslora",))
    assert f.search == "hello two words" and q.fits == "tiny"
    assert q.highlights["name"] == ("hello", "two words") and "q_proj" in q.highlights["targets"]
    # long spellings of flags and keys
    assert parse_query("is:modules_to_save rank:4 t:c_attn").filter.flags == ("mts",)
    # a round trip through the text form
    assert parse_query(format_query(f)).filter == f


def test_terms_being_typed_are_ignored_and_bad_terms_say_what_is_wrong():
    assert parse_query("base: r: tag:").empty
    for text, words in (("r:x", "r:x is not a number"), ("alpha:nan", "not a finite number"),
                        ("flag:nope", "unknown flag 'nope'"), ("colour:red", "unknown filter key 'colour'")):
        with pytest.raises(UsageError, match=words):
            parse_query(text)


def _names(*args):
    return [r["name"] for r in cli_json("list", *args)]


def test_hub_list_query_is_the_same_filter_as_the_flags(artifacts, hub_home):
    build_registry(artifacts).close()
    assert _names("r:8") == _names("--rank", "8") == ["llama-plain", "llama-rslora"]
    assert _names("base:llama", "target:k_proj") == _names("--base", "llama", "--target", "k_proj") == ["llama-rslora"]
    assert _names("flag:dora") == _names("--flag", "dora") == ["llama-dora"]
    dashed = json.loads(run_cli("list", "--json", "--", "-flag:rslora", "r:8").stdout)
    assert _names("not:rslora", "r:8") == [r["name"] for r in dashed] == ["llama-plain"]
    assert _names("tag:attent") == _names("--tag", "attent") == ["gpt2-attn"]       # substring
    assert _names("tag:attention r:8") == []
    # plain words: name, description or a target, each word must match
    assert _names("llama") == ["llama-dora", "llama-plain", "llama-rslora"]
    assert _names("o_proj") == ["llama-dora"]                     # a target, not in the name
    assert _names("LLAMA DORA") == ["llama-dora"]                 # every word, any case
    # query and flags together: both hold
    assert _names("llama", "--rank", "4") == ["llama-dora"]
    assert _names("alpha:16", "--sort", "name", "--desc") == ["llama-rslora", "llama-plain"]


def test_hub_list_query_errors_are_one_line(artifacts, hub_home):
    build_registry(artifacts, names=("llama-plain",)).close()
    bad = run_cli("list", "r:sixteen")
    assert bad.exit_code == 2 and "r:sixteen is not a number" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = run_cli("list", "fits:nobase")
    assert missing.exit_code != 0 and "no registered base named 'nobase'" in missing.stderr


def test_the_browse_index_matches_sql_for_query_filters(artifacts, hub_home):
    hub = build_registry(artifacts)
    index = hub.browsing.browse_index()
    for text in ("llama", "o_proj", "LLAMA DORA", "tag:fix", "target:proj r:8", "base:tiny -flag:dora",
                 "c_ gpt", "proj k_", "flag:fifo", "alpha:8"):
        flt = parse_query(text).filter
        assert [r.name for r in index.list_rows(flt, sources=False)] == \
            [r.name for r in hub.browsing.list_rows(flt, sources=False)] == [r.name for r in hub.list(flt)], text
        assert index.count_matching(flt) == hub.browsing.count_matching(flt)
    # typing narrows (the index refines its last answer): still the same as SQL
    for prefix in ("l", "ll", "lla", "llama d", "llama do"):
        flt = parse_query(prefix).filter
        assert index.count_matching(flt) == hub.browsing.count_matching(flt), prefix
    assert index.count_matching(ListFilter()) == 4
    hub.close()
