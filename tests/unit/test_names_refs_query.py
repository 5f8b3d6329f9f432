"""Names, NAME@VERSION references, weighted specs and the filter language: pure parsing."""

from __future__ import annotations

import pytest

from hub.errors import UsageError
from hub.names import check_name, check_tag, name_from_folder
from hub.refs import Ref, is_reserved, parse_ref, parse_weighted, version_commit
from hub.listing.filters import ListFilter
from hub.listing.query import parse_query


@pytest.mark.parametrize("name", ["style", "org/style", "a.b_c+d-1", "x" * 200])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "../x", "a/b/c", "a..b", "x\n", "x y", "x" * 201, "a/", "é"])
def test_invalid_names_are_one_usage_error(name):
    with pytest.raises(UsageError, match="invalid name"):
        check_name(name)


def test_tags_and_folder_names():
    assert check_tag("team:prod/v2") == "team:prod/v2"
    with pytest.raises(UsageError):
        check_tag("bad tag")
    assert name_from_folder("my lora (final)!") == "my-lora-final"
    assert name_from_folder("...") == "adapter"


@pytest.mark.parametrize("text, ref", [
    ("style", Ref("style")), ("style@2", Ref("style", version=2)), ("style@v3", Ref("style", version=3)),
    ("style@latest", Ref("style")), ("style@main", Ref("style")), ("style@prod", Ref("style", alias="prod")),
    ("org/style@" + "A" * 40, Ref("org/style", commit="a" * 40)),
])
def test_refs(text, ref):
    assert parse_ref(text) == ref
    assert str(parse_ref(str(ref))) == str(ref)


@pytest.mark.parametrize("text", ["style@0", "style@", "style@-x", "style@a b", "@2", "style@\x1b[2J"])
def test_bad_refs(text):
    with pytest.raises(UsageError):
        parse_ref(text)


def test_reserved_words_and_commit_ids():
    assert all(is_reserved(w) for w in ("main", "latest", "v7", "12", "0" * 40))
    assert not is_reserved("prod")
    commit = version_commit("ab" * 32)
    assert len(commit) == 40 and commit == version_commit("ab" * 32) != version_commit("cd" * 32)


def test_weighted_specs():
    assert parse_weighted("style") == ("style", 1.0)
    assert parse_weighted("style@prod:0.5") == ("style@prod", 0.5)
    assert parse_weighted("org/style@2:-1e-3") == ("org/style@2", -0.001)
    for bad in ("style:nan", "style:inf", "style:1e39", "style:abc"):
        with pytest.raises(UsageError):
            parse_weighted(bad)


def test_filter_language():
    q = parse_query('llama base:qwen r:16 alpha:32 target:q_proj,v_proj tag:prod flag:dora -flag:rslora fits:tiny')
    assert q.filter == ListFilter(base="qwen", rank=16, alpha=32.0, targets=("q_proj", "v_proj"), tags=("prod",),
                                  flags=("dora",), no_flags=("rslora",), search="llama")
    assert q.fits == "tiny" and q.words == ("llama",)
    assert q.to_filter(lambda name: {"tiny": 7}[name]).fits == 7
    assert parse_query("").empty and parse_query("r:").empty   # a key still being typed
    assert parse_query('"two words" x').filter.search == "two words x"
    assert parse_query('"unclosed').filter.search == "unclosed"


@pytest.mark.parametrize("text, what", [("r:x", "r"), ("colour:red", "colour"), ("flag:shiny", "shiny"),
                                        ("alpha:nan", "alpha")])
def test_filter_language_refuses_with_the_term(text, what):
    with pytest.raises(UsageError, match=what):
        parse_query(text)
