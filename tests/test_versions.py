"""Versions and aliases: the NAME[@VERSION|ALIAS] grammar, the commands that take it,
and the migration that makes every adapter of an older registry version 1 of its name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hub.errors import UsageError
from hub.refs import Ref, check_alias, is_reserved, parse_ref, version_commit
from tests.helpers import cli_json, run_cli


@pytest.fixture()
def three(artifacts):
    """Three different adapters of one base (versions 1, 2, 3 of `style`, in that order)."""
    return [artifacts.adapter("llama", f"ver{i}", seed=20 + i, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
            for i in range(3)]


def _styled(three):
    assert run_cli("add", three[0], "--name", "style").exit_code == 0
    for folder in three[1:]:
        result = run_cli("add", folder, "--name", "style", "--new-version")
        assert result.exit_code == 0, result.stderr
    return [json.loads((f / "adapter_config.json").read_text()) for f in three]


def _sha(folder: Path) -> str:
    return hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()


# -- the grammar --------------------------------------------------------------------------------

def test_grammar_parses_versions_aliases_and_commits():
    assert parse_ref("style") == Ref("style")
    assert parse_ref("org/style@main").is_latest and parse_ref("style@latest").is_latest
    assert parse_ref("style@3") == Ref("style", version=3) == parse_ref("style@v3")
    assert parse_ref("style@prod") == Ref("style", alias="prod")
    commit = "a" * 40
    assert parse_ref(f"style@{commit.upper()}") == Ref("style", commit=commit)
    assert str(parse_ref("style@v2")) == "style@2"
    for bad in ("style@", "style@0", "style@pr od", "../x@1", "style@a@b", "@1"):
        with pytest.raises(UsageError):
            parse_ref(bad)


@pytest.mark.parametrize("word", ["main", "latest", "MAIN", "v2", "7", "0" * 40, "f" * 40])
def test_reserved_words_are_never_aliases(word):
    assert is_reserved(word)
    with pytest.raises(UsageError):
        check_alias(word)


def test_grammar_inside_weighted_specs_and_layer_weights():
    from hub.combine.layer_weights import parse_layer_weights
    from hub.refs import parse_weighted

    assert parse_weighted("style@v2:0.5") == ("style@2", 0.5)
    assert parse_weighted("org/style@prod") == ("org/style@prod", 1.0)
    rules = parse_layer_weights("style@2@0-3=0.5,style@prod@/mlp/=2,style@1=0,0-1=3")
    assert [(r.parent, r.layers, r.match, r.factor) for r in rules] == [
        ("style@2", (0, 3), None, 0.5), ("style@prod", None, "mlp", 2.0), ("style", (1, 1), None, 0.0),
        (None, (0, 1), None, 3.0)]


# -- commands -----------------------------------------------------------------------------------

def test_new_version_alias_show_export_and_list(three, tmp_path):
    _styled(three)
    refused = run_cli("add", three[0], "--name", "style")
    assert refused.exit_code != 0 and "--new-version" in refused.stderr

    listed = cli_json("list")
    assert [(r["name"], r["version"]) for r in listed] == [("style", 3)]
    every = cli_json("list", "--all-versions")
    assert [(r["name"], r["version"]) for r in every] == [("style", 1), ("style", 2), ("style", 3)]

    assert run_cli("alias", "style", "prod", "2").exit_code == 0
    assert run_cli("alias", "style", "main", "1").exit_code == 2
    versions = cli_json("versions", "style")
    assert [(v["version"], v["aliases"], v["latest"]) for v in versions] == [(1, [], False), (2, ["prod"], False),
                                                                             (3, [], True)]
    assert versions[1]["commit"] == version_commit(versions[1]["sha256"])
    for ref, index in (("style", 2), ("style@1", 0), ("style@v2", 1), ("style@prod", 1),
                       (f"style@{versions[0]['commit']}", 0), ("style@main", 2)):
        shown = cli_json("show", ref)
        assert shown["version"] == index + 1 and shown["sha256"] == versions[index]["sha256"]
        out = tmp_path / f"export-{ref.replace('@', '-')}"
        assert run_cli("export", ref, out).exit_code == 0
        assert _sha(out) == _sha(three[index])
    missing = run_cli("show", "style@9")
    assert missing.exit_code != 0 and "style@9" in missing.stderr
    assert run_cli("show", "style@nope").exit_code != 0

    # the alias moves with the same command; `show` of a one-version name prints no version line
    assert run_cli("alias", "style", "prod", "3").exit_code == 0
    assert cli_json("show", "style@prod")["version"] == 3
    assert run_cli("alias", "style", "prod", "--rm").exit_code == 0
    assert run_cli("show", "style@prod").exit_code != 0


def test_tags_belong_to_a_version(three):
    _styled(three)
    assert run_cli("tag", "style", "fresh").exit_code == 0
    assert run_cli("tag", "style@1", "old").exit_code == 0
    assert cli_json("show", "style")["tags"] == ["fresh"]
    assert cli_json("show", "style@1")["tags"] == ["old"]
    assert [r["version"] for r in cli_json("list", "--tag", "old", "--all-versions")] == [1]


def test_rm_one_version_all_versions_and_aliases(three):
    _styled(three)
    assert run_cli("alias", "style", "prod", "3").exit_code == 0
    refused = run_cli("rm", "style@prod", "-y")
    assert refused.exit_code != 0 and "aliased" in refused.stderr and "--force" in refused.stderr
    assert run_cli("rm", "style@1", "-y").exit_code == 0
    assert [v["version"] for v in cli_json("versions", "style")] == [2, 3]
    assert run_cli("rm", "style@3", "-y", "--force").exit_code == 0   # the latest: 2 becomes latest
    assert [(v["version"], v["latest"], v["aliases"]) for v in cli_json("versions", "style")] == [(2, True, [])]
    assert cli_json("show", "style")["version"] == 2
    # a new version continues after the highest remaining one
    assert run_cli("add", three[0], "--name", "style", "--new-version").exit_code == 0
    assert [v["version"] for v in cli_json("versions", "style")] == [2, 3]
    assert run_cli("trash", "empty", "-y").exit_code == 0   # the removed versions' files count as used until then
    plan = cli_json("rm", "style", "--dry-run")["plans"][0]
    assert plan["versions"] == [2, 3] and len(plan["blobs"]) == 4
    assert run_cli("rm", "style", "-y").exit_code == 0
    assert cli_json("list") == []
    assert run_cli("trash", "empty", "-y").exit_code == 0   # rm keeps files in the trash until emptied
    from hub.service import Hub

    with Hub() as hub:
        assert not any(hub.store.has(_sha(f)) for f in three)


def test_rename_moves_every_version_and_alias(three):
    _styled(three)
    assert run_cli("alias", "style", "prod", "1").exit_code == 0
    assert run_cli("rename", "style@2", "tone").exit_code != 0
    assert run_cli("rename", "style", "tone").exit_code == 0
    assert [v["version"] for v in cli_json("versions", "tone")] == [1, 2, 3]
    assert cli_json("show", "tone@prod")["version"] == 1
    assert run_cli("show", "style").exit_code != 0


def test_combine_and_merge_record_the_exact_version(three, artifacts, tmp_path):
    _styled(three)
    assert run_cli("alias", "style", "prod", "1").exit_code == 0
    result = run_cli("combine", "style@prod:0.5", "style@2:0.5", "--method", "linear", "--name", "mix",
                     "--layer-weights", "style@prod@0=2")
    assert result.exit_code == 0, result.stderr
    mix = cli_json("show", "mix")
    assert [(p["name"], p["version"]) for p in mix["lineage"]] == [("style", 1), ("style", 2)]
    assert [p["name"] for p in mix["recipe"]["parents"]] == ["style@prod", "style@2"]
    assert mix["recipe"]["layer_weights"][0]["parent"] == "style@prod"

    base = artifacts.base("llama")
    out = tmp_path / "merged"
    result = run_cli("merge", "--base", base, "style@1", "--out", out)
    assert result.exit_code == 0, result.stderr
    lineage = cli_json("models")[0]["lineage"] if run_cli("models", "--help").exit_code == 0 else None
    if lineage is not None:
        adapter = [p for p in lineage if p["type"] == "adapter"][0]
        assert (adapter["name"], adapter["version"]) == ("style", 1)


def test_check_accepts_a_version(three, artifacts):
    _styled(three)
    result = run_cli("check", "style@2", "--base", artifacts.base("llama"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["compatible"] is True


# -- migration ----------------------------------------------------------------------------------

def test_old_registry_migrates_every_adapter_to_version_one(tmp_path, three, hub_home):
    """A registry at the revision before versions (rows written through that schema) opens as
    version 1 of each name, keeps its lineage, and takes new versions afterwards."""
    import os

    from sqlalchemy import MetaData, Table, insert

    from hub.registry.db import Database
    from hub.service import Hub

    url = os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{hub_home / 'registry.db'}"
    hub_home.mkdir(parents=True, exist_ok=True)
    db = Database(url)
    from alembic.script import ScriptDirectory

    from hub.registry.db import alembic_config

    before = ScriptDirectory.from_config(alembic_config()).get_revision("versions_aliases").down_revision
    db.upgrade(before)
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc)
    common = dict(peft_type="LORA", r=4, lora_alpha=8.0, scaling=2.0, use_rslora=False, use_dora=False,
                  fan_in_fan_out=False, lora_bias=False, has_embedding_lora=False, has_modules_to_save=False,
                  target_modules="q_proj,v_proj", num_layers=2, num_modules=4, param_count=1, size_bytes=10,
                  config_json="{}", modules_json="{}", saved_tensors_json="{}", findings_json="[]",
                  storage="store", source_kind="local", created_at=stamp, updated_at=stamp)
    with db.write() as conn:
        old = MetaData()
        adapters = Table("adapters", old, autoload_with=conn)
        lineage = Table("lineage", old, autoload_with=conn)
        conn.execute(insert(adapters), [dict(common, name="alpha", sha256="1" * 64),
                                        dict(common, name="beta", sha256="2" * 64)])
        ids = {r.name: r.id for r in conn.execute(adapters.select())}
        conn.execute(insert(lineage), dict(child_type="adapter", child_id=ids["beta"], parent_type="adapter",
                                           parent_id=ids["alpha"], parent_name="alpha", parent_sha256="1" * 64,
                                           weight=1.0, position=0))
    db.dispose()

    with Hub() as hub:
        assert [(v.version, v.latest) for v in hub.versions("alpha")] == [(1, True)]
        assert hub.get("beta@1").lineage[0]["version"] == 1
        assert [(r.name, r.version) for r in hub.list()] == [("alpha", 1), ("beta", 1)]
        hub.add(three[0], name="alpha", new_version=True)
        assert [(v.version, v.latest) for v in hub.versions("alpha")] == [(1, False), (2, True)]
        assert hub.get("alpha").version == 2


def test_push_sends_the_named_version(three, hub_online):
    """`hub push NAME@N` uploads that version, not the latest (the fake Hub from tests/hubserver)."""
    from huggingface_hub import HfApi, hf_hub_download

    _styled(three)
    assert run_cli("alias", "style", "prod", "1").exit_code == 0
    repo_id = hub_online.repo_id()
    result = run_cli("push", "style@prod", repo_id)
    assert result.exit_code == 0, result.stderr
    path = hf_hub_download(repo_id, "adapter_model.safetensors")
    assert _sha(Path(path).parent) == _sha(three[0])
    assert [r["repo_id"] for r in cli_json("show", "style@1")["remotes"]] == [repo_id]
    assert cli_json("show", "style")["remotes"] == []
    assert HfApi().model_info(repo_id).sha


def test_pull_update_of_a_versioned_name_adds_a_version(three, hub_online, tmp_path):
    """`hub pull --update NAME` keeps NAME's versions: the new commit becomes the next one
    (a one-version name is still replaced, as tests/test_sync.py holds)."""
    repo_id = hub_online.repo_id()
    assert run_cli("add", three[0], "--name", "src").exit_code == 0
    assert run_cli("push", "src", repo_id).exit_code == 0
    assert run_cli("pull", repo_id, "--name", "tracked").exit_code == 0     # src's content: "exists"
    assert run_cli("rm", "src", "-y").exit_code == 0
    assert run_cli("pull", repo_id, "--name", "tracked").exit_code == 0
    for folder in three[1:]:
        assert run_cli("add", folder, "--name", "src").exit_code == 0
        assert run_cli("push", "src", repo_id).exit_code == 0
        assert run_cli("rm", "src", "-y").exit_code == 0
        if folder is three[1]:
            result = run_cli("pull", repo_id, "--name", "tracked", "--new-version")
            assert result.exit_code == 0, result.stderr
    updated = cli_json("pull", "--update", "tracked")[0]
    assert updated["status"] == "updated" and updated["name"] == "tracked@3"
    assert [v["sha256"][:12] for v in cli_json("versions", "tracked")] == \
        [cli_json("show", f"tracked@{n}")["sha256"][:12] for n in (1, 2, 3)]
    out = tmp_path / "export-check"
    assert run_cli("export", "tracked@3", out).exit_code == 0 and _sha(out) == _sha(three[2])
    assert run_cli("export", "tracked@1", out, "--overwrite").exit_code == 0 and _sha(out) == _sha(three[0])
