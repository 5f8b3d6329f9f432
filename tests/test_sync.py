"""hub pull / push / search-remote / status against the fake Hub, through the real
huggingface_hub client (in this process, with HF_ENDPOINT and HF_TOKEN set)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import cli_json, copy_adapter, registry_snapshot, run_cli, store_blobs
from tests.hubserver.fixture import ensure_model

pytestmark = pytest.mark.usefixtures("hub_online")

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def ok(*args):
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return result


def fail(*args, code=None):
    result = run_cli(*args)
    assert result.exit_code != 0, result.stdout
    if code is not None:
        assert result.exit_code == code, result.stderr
    line = result.stderr.strip()
    assert line.startswith("hub: error:") and "\n" not in line, result.stderr
    return line


def api(server):
    from huggingface_hub import HfApi

    return HfApi(endpoint=server.url, token=server.token)


def remote_card(server, repo_id, revision="main") -> dict:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, "README.md", revision=revision, endpoint=server.url)
    text = open(path).read()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def exported(name, tmp_path) -> dict[str, bytes]:
    import uuid

    out = tmp_path / f"export-{name}-{uuid.uuid4().hex[:6]}"
    ok("export", name, out)
    return {f: (out / f).read_bytes() for f in ADAPTER_FILES}


def adapter_bytes(folder) -> dict[str, bytes]:
    return {f: (folder / f).read_bytes() for f in ADAPTER_FILES}


def nothing_left(home):
    """No stray download folders or partial files under HUB_HOME/tmp."""
    tmp = home / "tmp"
    return not tmp.exists() or not any(tmp.iterdir())


BASE_ID = "tiny-org/tiny-llama"


@pytest.fixture
def hub_base(artifacts, hub_online):  # noqa: F811
    """The tiny llama base as a model repo on the fake Hub (cards may only name bases the Hub hosts)."""
    return ensure_model(hub_online, BASE_ID, {"config.json": (artifacts.base("llama") / "config.json").read_bytes()})


@pytest.fixture
def plain(artifacts, tmp_path, hub_base):
    """The 'plain' adapter registered as 'plain', declaring a base the Hub hosts."""
    folder = copy_adapter(artifacts["plain"][1], tmp_path / "plain")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "tiny-org/tiny-llama"
    (folder / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    ok("add", folder, "--name", "plain")
    return folder


def test_push_then_pull_round_trips_byte_identical(plain, hub_online, tmp_path, hub_home):  # noqa: F811
    repo_id = hub_online.repo_id()
    out = ok("push", "plain", repo_id)
    assert f"pushed plain to {hub_online.url}/{repo_id}" in out.stdout and "[new repo]" in out.stdout
    head = api(hub_online).model_info(repo_id).sha

    card = remote_card(hub_online, repo_id)
    assert card["base_model"] == "tiny-org/tiny-llama" and card["base_model_relation"] == "adapter"
    assert card["library_name"] == "peft" and "lora" in card["tags"]
    assert card["hub"]["sha256"] == cli_json("show", "plain")["sha256"]
    # the Hub indexes it under its base
    assert "base_model:adapter:tiny-org/tiny-llama" in api(hub_online).model_info(repo_id).tags

    pulled = cli_json("pull", repo_id, "--name", "copy")
    assert [p["status"] for p in pulled] == ["exists"]  # same content: nothing new registered
    ok("rm", "plain", "-y")
    pulled = cli_json("pull", repo_id, "--name", "copy")
    assert pulled[0]["status"] == "added" and pulled[0]["commit"] == head
    assert exported("copy", tmp_path) == adapter_bytes(plain)
    record = cli_json("show", "copy")
    assert record["source"] == {"kind": "hub", "path": f"{hub_online.url}/{repo_id}", "repo": repo_id,
                                "revision": "main", "commit": head, "subfolder": None}
    assert [(r["direction"], r["repo_id"], r["revision"], r["commit"]) for r in record["remotes"]] == \
        [("pull", repo_id, "main", head)]
    assert sorted(f["name"] for f in record["files"]) == ["README.md", *ADAPTER_FILES]
    assert nothing_left(hub_home)


def test_push_unchanged_content_makes_no_commit(plain, hub_online):  # noqa: F811
    repo_id = hub_online.repo_id()
    ok("push", "plain", repo_id)
    commits = len(api(hub_online).list_repo_commits(repo_id))
    again = ok("push", "plain", repo_id)
    assert "no commit made" in again.stderr
    assert len(api(hub_online).list_repo_commits(repo_id)) == commits
    pushed = cli_json("show", "plain")["remotes"]
    assert [(r["direction"], r["repo_id"]) for r in pushed] == [("push", repo_id)]


def test_pull_of_an_unchanged_revision_downloads_nothing(plain, hub_online, hub_home):  # noqa: F811
    repo_id = hub_online.repo_id()
    ok("push", "plain", repo_id)
    ok("rm", "plain", "-y")
    ok("pull", repo_id)
    before = registry_snapshot(hub_home)
    mark = hub_online.mark()
    again = ok("pull", repo_id)
    assert "nothing downloaded" in again.stderr
    assert not [line for line in hub_online.requests(mark) if "/resolve/" in line or line.startswith("GET cdn:")]
    after = registry_snapshot(hub_home)
    # only the remote's checked_at moved
    assert {k: v for k, v in before.items() if k != "remotes"} == {k: v for k, v in after.items() if k != "remotes"}


def test_tags_commits_and_moved_branches(artifacts, hub_online, hub_base, tmp_path):  # noqa: F811
    repo_id = hub_online.repo_id()
    v1 = artifacts.adapter("llama", "sync-v1", seed=11, r=4, lora_alpha=8, target_modules=["q_proj"])
    v2 = artifacts.adapter("llama", "sync-v2", seed=12, r=4, lora_alpha=8, target_modules=["q_proj"])
    v3 = artifacts.adapter("llama", "sync-v3", seed=13, r=4, lora_alpha=8, target_modules=["q_proj"])
    ok("add", v1, "--name", "v1")
    ok("push", "v1", repo_id, "--base-model", "tiny-org/tiny-llama")
    c1 = api(hub_online).model_info(repo_id).sha
    api(hub_online).create_tag(repo_id, tag="release")
    ok("add", v2, "--name", "v2")
    ok("push", "v2", repo_id)
    c2 = api(hub_online).model_info(repo_id).sha
    ok("rm", "v1", "-y")
    ok("rm", "v2", "-y")

    assert cli_json("pull", f"{repo_id}@release", "--name", "at-tag")[0]["commit"] == c1
    assert exported("at-tag", tmp_path) == adapter_bytes(v1)
    by_sha = cli_json("pull", f"{repo_id}@{c1}", "--name", "at-sha")[0]
    assert by_sha["status"] == "unchanged" and by_sha["name"] == "at-tag"  # that commit is already here
    main = cli_json("pull", repo_id, "--name", "tracking")[0]
    assert main["commit"] == c2 and exported("tracking", tmp_path) == adapter_bytes(v2)

    # main moves on: status says so, --update fetches it, the tag and the sha do not move
    ok("add", v3, "--name", "v3")
    ok("push", "v3", repo_id)
    c3 = api(hub_online).model_info(repo_id).sha
    states = {(s["name"], s["direction"]): s for s in cli_json("status")}
    assert states[("tracking", "pull")]["state"] == "moved"
    assert states[("tracking", "pull")]["remote_commit"] == c3
    assert states[("at-tag", "pull")]["state"] == "up-to-date"
    assert states[("v3", "push")]["state"] == "up-to-date"
    ok("rm", "v3", "-y")
    updated = cli_json("pull", "--update", "tracking")[0]
    assert updated["status"] == "updated" and updated["commit"] == c3
    assert exported("tracking", tmp_path) == adapter_bytes(v3)
    assert cli_json("status", "tracking")[0]["state"] == "up-to-date"
    assert cli_json("pull", "--update", "tracking")[0]["status"] == "unchanged"
    assert exported("at-tag", tmp_path) == adapter_bytes(v1)


def test_multi_adapter_repo_lists_and_pulls_one_or_all(artifacts, hub_online, tmp_path):  # noqa: F811
    repo_id = hub_online.repo_id("multi")
    a = artifacts.adapter("llama", "sync-a", seed=21, r=4, lora_alpha=8, target_modules=["q_proj"])
    b = artifacts.adapter("llama", "sync-b", seed=22, r=2, lora_alpha=4, target_modules=["v_proj"])
    ok("add", a, "--name", "a")
    ok("add", b, "--name", "b")
    ok("push", "a", repo_id, "--subfolder", "loras/sql")
    ok("push", "b", repo_id, "--subfolder", "loras/chat")
    ok("rm", "a", "-y")
    ok("rm", "b", "-y")

    listing = cli_json("pull", repo_id, "--list")
    assert [x["subfolder"] for x in listing["adapters"]] == ["loras/chat", "loras/sql"]
    line = fail("pull", repo_id, code=2)
    assert "holds 2 adapters (loras/chat, loras/sql)" in line and "--subfolder" in line
    one = cli_json("pull", repo_id, "--subfolder", "loras/sql")[0]
    assert one["name"] == f"{repo_id.split('/')[1]}-loras-sql"
    assert exported(one["name"], tmp_path) == adapter_bytes(a)
    both = cli_json("pull", repo_id, "--all", "--name", "team")
    assert sorted((r["status"], r["name"]) for r in both) == [("added", "team-loras-chat"),
                                                              ("unchanged", one["name"])]
    assert exported("team-loras-chat", tmp_path) == adapter_bytes(b)
    assert "no adapter in subfolder 'nope'" in fail("pull", repo_id, "--subfolder", "nope")


def test_pickle_only_repo_is_refused_unread(artifacts, hub_online, hub_home):  # noqa: F811
    repo_id = hub_online.repo_id("pickled")
    api(hub_online).create_repo(repo_id)
    config = (artifacts["plain"][1] / "adapter_config.json").read_bytes()
    hub_online.store.raw_commit(repo_id, {"adapter_config.json": config, "adapter_model.bin": b"\x80\x04pickle"})
    mark = hub_online.mark()
    line = fail("pull", repo_id)
    assert "only pickle weights (adapter_model.bin)" in line and "never unpickles" in line
    assert not [x for x in hub_online.requests(mark) if "/resolve/" in x]  # nothing was downloaded
    assert cli_json("list") == [] and nothing_left(hub_home)


def test_missing_repos_revisions_and_files(plain, hub_online):  # noqa: F811
    missing = hub_online.repo_id("missing")
    assert f"no model repo '{missing}' on the Hub" in fail("pull", missing)
    repo_id = hub_online.repo_id()
    ok("push", "plain", repo_id)
    assert "revision 'nope' not found" in fail("pull", f"{repo_id}@nope")
    assert "revision" in fail("pull", f"{repo_id}@{'0' * 40}")
    empty = hub_online.repo_id("empty")
    api(hub_online).create_repo(empty)
    assert "no adapter in this repo" in fail("pull", empty)
    assert "no adapter named" in fail("push", "ghost", repo_id)
    assert "was not pulled from the Hub" in fail("pull", "--update", "plain")


@pytest.mark.parametrize("spec", ["a/b/c", "../etc", "org/-lead", "org/a--b", "org/x.git", "@main", "org/na me",
                                  "org/name@", "org/name@a..b", "org/name@/abs"])
def test_malformed_repo_ids_and_revisions(spec, hub_online, hub_home):  # noqa: F811
    mark = hub_online.mark()
    line = fail("pull", spec, code=2)
    assert "invalid Hub repo id" in line or "invalid revision" in line
    assert hub_online.requests(mark) == [] and not store_blobs(hub_home)


@pytest.mark.parametrize("bad", ["../evil/adapter_config.json", "/abs/adapter_config.json", "a/./b.txt"])
def test_unsafe_remote_file_names_are_refused(bad, plain, hub_online, hub_home, tmp_path):  # noqa: F811
    repo_id = hub_online.repo_id("hostile")
    ok("push", "plain", repo_id)
    ok("rm", "plain", "-y")
    hub_online.store.raw_commit(repo_id, {bad: b"{}"})
    before = registry_snapshot(hub_home)
    mark = hub_online.mark()
    line = fail("pull", repo_id)
    assert "unsafe file name" in line
    assert not [x for x in hub_online.requests(mark) if "/resolve/" in x]
    assert registry_snapshot(hub_home) == before and nothing_left(hub_home)
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("damage", ["truncate", "same-size", "longer", "readme"])
def test_damaged_remote_files_register_nothing(damage, artifacts, hub_online, hub_home):  # noqa: F811
    seed = {"truncate": 31, "same-size": 32, "longer": 33, "readme": 34}[damage]
    folder = artifacts.adapter("llama", f"sync-damage-{damage}", seed=seed, r=2, lora_alpha=4,
                               target_modules=["q_proj"])
    ok("add", folder, "--name", "victim")
    repo_id = hub_online.repo_id("damaged")
    ok("push", "victim", repo_id)
    ok("rm", "victim", "-y")
    files = hub_online.store.commit(repo_id, api(hub_online).model_info(repo_id).sha).files
    if damage == "readme":  # a regular (non-LFS) file, served directly with ETag = git blob id
        sha = files["README.md"].sha256
        hub_online.store.damage_blob(sha, hub_online.store.read_blob(sha)[:-10])
    else:  # the LFS weights, served by the CDN origin
        sha = files["adapter_model.safetensors"].sha256
        data = hub_online.store.read_blob(sha)
        broken = {"truncate": data[: len(data) // 2], "same-size": data[:-4] + b"\0\0\0\0",
                  "longer": data + b"extra"}[damage]
        hub_online.store.damage_blob(sha, broken)
    before = registry_snapshot(hub_home)
    line = fail("pull", repo_id)
    assert any(word in line for word in ("truncated", "does not match", "bytes but the Hub lists")), line
    assert registry_snapshot(hub_home) == before and nothing_left(hub_home)
    assert cli_json("list") == []


def test_branches_prs_and_private_repos(plain, hub_online):  # noqa: F811
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id = hub_online.repo_id("private")
    ok("push", "plain", repo_id, "--private", "--revision", "dev")
    refs = api(hub_online).list_repo_refs(repo_id)
    branches = {b.name: b.target_commit for b in refs.branches}
    assert set(branches) == {"main", "dev"} and branches["main"] != branches["dev"]
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub_online.url, token="hf_bob_token").model_info(repo_id)
    other = hub_online.repo_id("pr")
    ok("push", "plain", other)
    main = api(hub_online).model_info(other).sha
    # a PR with new card prose: new content -> a refs/pr/N commit, main untouched
    ok("tag", "plain", "reviewed")
    pr = cli_json("push", "plain", other, "--create-pr")
    assert pr["revision"] == "refs/pr/1" and pr["pr_url"].endswith("/discussions/1")
    assert api(hub_online).model_info(other).sha == main
    assert "reviewed" in remote_card(hub_online, other, "refs/pr/1")["tags"]
    assert "HTTP 403" in fail("push", "plain", "bob/not-mine")


def test_search_remote_marks_registered(plain, artifacts, hub_online):  # noqa: F811
    base = ensure_model(hub_online, f"tiny-org/base-{hub_online.repo_id('b').split('-')[-1]}")
    first, second = hub_online.repo_id("s1"), hub_online.repo_id("s2", namespace="acme")
    ok("push", "plain", first, "--base-model", base)
    other = artifacts.adapter("llama", "sync-search", seed=41, r=2, lora_alpha=4, target_modules=["q_proj"])
    ok("add", other, "--name", "other")
    ok("push", "other", second, "--base-model", base)
    ok("rm", "other", "-y")
    hits = {h["repo_id"]: h for h in cli_json("search-remote", "--base", base)}
    assert set(hits) == {first, second}
    assert hits[first]["registered"] == ["plain"] and hits[second]["registered"] == []
    assert hits[first]["base_models"] == [base]
    assert [h["repo_id"] for h in cli_json("search-remote", "--base", base, "--author", "acme")] == [second]
    assert [h["repo_id"] for h in cli_json("search-remote", "--base", base, "--query", "s1-")] == [first]
    text = ok("search-remote", "--base", base)
    assert text.stdout.splitlines()[0].split() == ["REPO", "BASE", "DOWNLOADS", "LIKES", "REGISTERED"]


def test_combined_adapter_card_carries_lineage_and_recipe(artifacts, hub_online, hub_base, tmp_path):  # noqa: F811
    from hub.service import Hub

    parent = artifacts.adapter("llama", "sync-parent", seed=51, r=2, lora_alpha=4, target_modules=["q_proj"])
    child = artifacts.adapter("llama", "sync-child", seed=52, r=4, lora_alpha=8, target_modules=["q_proj"])
    ok("add", parent, "--name", "parent")
    recipe = {"method": "cat", "weights": [0.5], "seed": 0}
    with Hub() as hub:
        sha = hub.get("parent").sha256
        hub.add(child, name="child", recipe=recipe,
                lineage=[{"type": "adapter", "id": hub.get("parent").id, "name": "parent", "sha256": sha,
                          "weight": 0.5}])
    repo_id = hub_online.repo_id("combined")
    ok("push", "child", repo_id, "--base-model", "tiny-org/tiny-llama")
    card = remote_card(hub_online, repo_id)
    assert card["hub"]["lineage"] == [{"type": "adapter", "name": "parent", "sha256": sha, "weight": 0.5}]
    assert card["hub"]["recipe"] == recipe
    assert card["base_model_relation"] == "adapter"


def test_offline_mode_is_honoured(plain, hub_online, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mark = hub_online.mark()
    for args in (("pull", "alice/x"), ("push", "plain", "alice/x"), ("search-remote",)):
        assert "HF_HUB_OFFLINE" in fail(*args)
    states = run_cli("status", "--json")
    assert states.exit_code == 0 and json.loads(states.stdout) == []
    assert hub_online.requests(mark) == []


@pytest.mark.parametrize("endpoint, message", [
    ("http://127.0.0.1:9", "cannot reach http://127.0.0.1:9: Connection refused"),   # nothing listens
    ("http://hub.invalid", "cannot reach http://hub.invalid"),                        # name does not resolve
    ("ftp://example.com", "HF_ENDPOINT is not an http(s) URL"),
])
def test_unreachable_endpoint_fails_with_one_line(endpoint, message, plain, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for args in (("pull", "alice/x"), ("push", "plain", "alice/x"), ("search-remote",)):
        assert message in fail(*args)
    assert cli_json("status", "plain") == []  # nothing recorded: nothing to ask the Hub


def test_peft_loads_what_hub_pushed(artifacts, hub_online, hub_base, tmp_path):  # noqa: F811
    """PEFT's own PeftModel.from_pretrained(repo, revision=...) through huggingface_hub, in a clean process."""
    import subprocess
    import sys

    base, folder = artifacts["dora"]
    ok("add", folder, "--name", "dora")
    repo_id = hub_online.repo_id("peft")
    ok("push", "dora", repo_id, "--revision", "v2-branch", "--base-model", "tiny-org/tiny-llama")
    script = f"""
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
ids = torch.randint(0, 128, (1, 12))
def logits(source, **kw):
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({str(base)!r}), source, **kw).eval()
    with torch.no_grad():
        return model(ids).logits
remote = logits({repo_id!r}, revision="v2-branch")
local = logits({str(folder)!r})
print(json.dumps({{"max_diff": (remote - local).abs().max().item()}}))
"""
    env = hub_online.env(hf_home=tmp_path / "hf")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["max_diff"] == 0.0
    downloads = [x for x in hub_online.requests() if f"/{repo_id}/resolve/v2-branch/" in x]
    assert any("adapter_model.safetensors" in x for x in downloads)


def test_pulled_adapter_pushed_back_makes_no_commit(plain, hub_online):  # noqa: F811
    repo_id = hub_online.repo_id("roundtrip")
    ok("push", "plain", repo_id)
    ok("rm", "plain", "-y")
    ok("pull", repo_id, "--name", "plain")
    commits = len(api(hub_online).list_repo_commits(repo_id))
    assert "no commit made" in ok("push", "plain", repo_id).stderr  # the regenerated card is identical
    assert len(api(hub_online).list_repo_commits(repo_id)) == commits


def test_token_from_saved_login_and_missing_token(plain, hub_online, monkeypatch, tmp_path):  # noqa: F811
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    assert "HTTP 401" in fail("push", "plain", hub_online.repo_id("anon"))
    token_file = tmp_path / "saved-token"
    token_file.write_text("hf_alice_token")  # what `hf auth login` writes
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_file))
    repo_id = hub_online.repo_id("login")
    ok("push", "plain", repo_id)
    assert api(hub_online).model_info(repo_id).author == "alice"


def test_card_keeps_the_authors_metadata_and_prose(plain):
    from hub.service import Hub
    from hub.sync import model_card

    with Hub() as hub:
        record = hub.get("plain")
    existing = "---\nlicense: apache-2.0\ndatasets: [squad]\ntags: [mine]\nbase_model: ../local\n---\n\n# Mine\nHello.\n"
    text = model_card.render(record, "alice/x", "org/base", existing)
    meta, body = model_card.split_card(text)
    assert meta["base_model"] == "org/base" and meta["base_model_relation"] == "adapter"
    assert meta["license"] == "apache-2.0" and meta["datasets"] == ["squad"]
    assert meta["tags"][:2] == ["base_model:adapter:org/base", "lora"] and "mine" in meta["tags"]
    assert body.strip() == "# Mine\nHello."
    assert model_card.render(record, "alice/x", "org/base", text) == text  # stable under re-rendering
    assert model_card.hub_base_model("../local") is None and model_card.hub_base_model(None) is None
    fresh, _ = model_card.split_card(model_card.render(record, "alice/x", None))
    assert "base_model" not in fresh and fresh["library_name"] == "peft"


def test_card_names_only_bases_the_hub_hosts(artifacts, hub_online, hub_base, tmp_path):  # noqa: F811
    folder = copy_adapter(artifacts["plain"][1], tmp_path / "local-base")  # declares a local folder as its base
    ok("add", folder, "--name", "local-base")
    repo_id = hub_online.repo_id("nobase")
    pushed = run_cli("push", "local-base", repo_id)
    assert pushed.exit_code == 0 and "warning: no Hub base model known" in pushed.stderr
    assert "base_model" not in remote_card(hub_online, repo_id)
    line = fail("push", "local-base", repo_id, "--base-model", "tiny-org/not-there")
    assert "base model 'tiny-org/not-there' is not on the Hub" in line
    ok("push", "local-base", repo_id, "--base-model", BASE_ID)
    assert remote_card(hub_online, repo_id)["base_model"] == BASE_ID
    # the Hub itself refuses a card naming a base it does not host (hub checks first, so go around it)
    with pytest.raises(ValueError, match="is not valid"):
        api(hub_online).upload_file(path_or_fileobj=b"---\nbase_model: nobody/nothing\n---\n", path_in_repo="README.md",
                                    repo_id=repo_id)


def test_merged_model_push_carries_lineage_and_recipe(plain, artifacts, hub_online, tmp_path):  # noqa: F811
    from hub.service import Hub

    with Hub() as hub:
        outcome = hub.merge(str(artifacts.base("llama")), [("plain", 0.5)], tmp_path / "merged", name="merged-plain")
        assert outcome.record is not None
    repo_id = hub_online.repo_id("merged")
    ok("push", "merged-plain", repo_id, "--base-model", BASE_ID)
    card = remote_card(hub_online, repo_id)
    assert card["base_model"] == BASE_ID and card["base_model_relation"] == "merge"
    assert card["library_name"] == "transformers"
    assert [(p["name"], p["weight"]) for p in card["hub"]["lineage"] if p["type"] == "adapter"] == [("plain", 0.5)]
    assert card["hub"]["recipe"]
    remote_files = {e.path for e in api(hub_online).list_repo_tree(repo_id, recursive=True)}
    local_files = {p.relative_to(tmp_path / "merged").as_posix() for p in (tmp_path / "merged").rglob("*") if p.is_file()}
    assert local_files | {"README.md", ".gitattributes"} == remote_files
    assert "no commit made" in ok("push", "merged-plain", repo_id, "--base-model", BASE_ID).stderr


def test_pull_reports_transfer_progress(plain, hub_online):  # noqa: F811
    from hub.service import Hub

    repo_id = hub_online.repo_id("progress")
    ok("push", "plain", repo_id)
    ok("rm", "plain", "-y")
    seen = []
    with Hub() as hub:
        result = hub.pull(repo_id, progress=lambda done, total, item: seen.append((done, total, item)))[0]
        size = sum(f["size"] for f in hub.get(result.name).files)
    assert seen and seen[-1][0] == seen[-1][1] == size
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert {item for _, _, item in seen} == {"adapter_config.json", "adapter_model.safetensors", "README.md"}


def test_probe_goes_through_the_proxy_the_client_would_use(plain, hub_online, monkeypatch):  # noqa: F811
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")   # a proxy that is down
    line = fail("pull", "alice/x")
    assert f"cannot reach {hub_online.url} (via proxy 127.0.0.1): Connection refused" in line
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")               # the endpoint bypasses it again
    assert "no model repo" in fail("pull", hub_online.repo_id("missing"))


def test_private_flag_on_an_existing_public_repo_warns(plain, hub_online):  # noqa: F811
    repo_id = hub_online.repo_id("public")
    ok("push", "plain", repo_id)
    again = ok("push", "plain", repo_id, "--private")
    assert "already exists and is public" in again.stderr
    assert api(hub_online).model_info(repo_id).private is False


def test_client_errors_become_one_line_hub_errors(plain, hub_online, tmp_path):  # noqa: F811
    """Errors raised by the real client against the server, as hub words them."""
    from huggingface_hub import hf_hub_download

    from hub.errors import NotFound
    from hub.sync.remote import Remote

    repo_id = hub_online.repo_id()
    ok("push", "plain", repo_id)
    remote = Remote.from_env()
    cases = [
        (hub_online.repo_id("missing"), "main", "a.json", "no model repo"),
        (repo_id, "no-branch", "adapter_config.json", "revision 'no-branch' not found"),
        (repo_id, "main", "nope/adapter_config.json", "nope/adapter_config.json not found in"),
    ]
    for repo, revision, path, words in cases:
        with pytest.raises(NotFound) as err, remote.errors(repo, revision, path):
            hf_hub_download(repo, path, revision=revision, endpoint=remote.endpoint, cache_dir=tmp_path / "cache")
        assert words in str(err.value) and "\n" not in str(err.value)


def test_only_hub_sync_imports_huggingface_hub():
    import ast
    from pathlib import Path

    import hub

    root = Path(hub.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).parts[0] == "sync":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "huggingface_hub" or n.startswith("huggingface_hub.") for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
