"""The fake Hub, driven by the real huggingface_hub client: what hub/sync relies on
must behave as it does against huggingface.co."""

from __future__ import annotations

import hashlib
import os

import pytest


pytestmark = pytest.mark.usefixtures("hub_online")


@pytest.fixture
def api(hub_online):  # noqa: F811
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_online.url, token=hub_online.token)


def _folder(root, files: dict[str, bytes]):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _payload(n: int = 40_000) -> bytes:
    return os.urandom(n)


def test_upload_goes_through_lfs_and_downloads_are_byte_identical(api, hub_online, tmp_path):  # noqa: F811
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    weights, card = _payload(), b"---\nlicense: mit\n---\n# card\n"
    folder = _folder(tmp_path / "up", {"adapter_model.safetensors": weights, "README.md": card})
    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    mark = hub_online.mark()
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="upload")
    log = hub_online.requests(mark)
    # the LFS protocol, as huggingface.co speaks it: preupload, batch, PUT, verify, then the NDJSON commit
    assert any(line.startswith(f"POST /api/models/{repo_id}/preupload/main 200") for line in log)
    assert any(line.startswith(f"POST /{repo_id}.git/info/lfs/objects/batch 200") for line in log)
    assert any(line.startswith("PUT /_lfs/" + hashlib.sha256(weights).hexdigest()) for line in log)
    assert any(line.startswith(f"POST /{repo_id}.git/info/lfs/objects/verify 200") for line in log)
    assert f"POST /api/models/{repo_id}/commit/main 200" in log

    lfs_meta = get_hf_file_metadata(hf_hub_url(repo_id, "adapter_model.safetensors", endpoint=hub_online.url))
    assert lfs_meta.commit_hash == info.oid
    assert lfs_meta.etag == hashlib.sha256(weights).hexdigest() and lfs_meta.size == len(weights)
    assert not lfs_meta.location.startswith(hub_online.url)  # redirected to the CDN origin
    reg_meta = get_hf_file_metadata(hf_hub_url(repo_id, "README.md", endpoint=hub_online.url))
    assert reg_meta.etag == hashlib.sha1(b"blob %d\0" % len(card) + card).hexdigest()  # git blob id

    for name, data in (("adapter_model.safetensors", weights), ("README.md", card)):
        path = hf_hub_download(repo_id, name, endpoint=hub_online.url, cache_dir=tmp_path / "cache")
        assert open(path, "rb").read() == data


def test_unchanged_upload_creates_no_commit(api, hub_online, tmp_path):  # noqa: F811
    folder = _folder(tmp_path / "up", {"w.safetensors": _payload(), "notes.txt": b"same"})
    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    first = api.upload_folder(repo_id=repo_id, folder_path=folder)
    again = api.upload_folder(repo_id=repo_id, folder_path=folder)
    assert again.oid == first.oid
    assert len(api.list_repo_commits(repo_id)) == 2  # the initial .gitattributes commit + one upload


def test_tags_branches_and_commit_ids_resolve_like_the_hub(api, hub_online, tmp_path):  # noqa: F811
    from huggingface_hub import hf_hub_download

    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    v1 = api.upload_file(path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo_id).oid
    api.create_tag(repo_id, tag="v1")
    api.create_branch(repo_id, branch="dev")
    v2 = api.upload_file(path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo_id).oid
    dev2 = api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id=repo_id, revision="dev").oid

    refs = api.list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": v2, "dev": dev2}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": v1}
    assert len(v1) == 40 and v1 != v2
    assert api.model_info(repo_id, revision="v1").sha == v1
    assert api.model_info(repo_id, revision=v1).sha == v1
    assert api.model_info(repo_id, revision="refs/heads/dev").sha == dev2

    def read(revision):
        return open(hf_hub_download(repo_id, "f.txt", revision=revision, cache_dir=tmp_path / "c"), "rb").read()

    assert (read("v1"), read(v1), read("main"), read("dev")) == (b"one", b"one", b"two", b"dev")
    # a branch that moves on: the same name now resolves to the new commit
    api.upload_file(path_or_fileobj=b"three", path_in_repo="f.txt", repo_id=repo_id)
    assert read("main") == b"three" and read(v2) == b"two"


def test_tree_and_paths_info_paginate(api, hub_online, tmp_path):  # noqa: F811
    files = {f"a{i}/adapter_config.json": b"{}" for i in range(4)}
    files["a0/adapter_model.safetensors"] = _payload(1000)
    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=_folder(tmp_path / "up", files))
    tree = list(api.list_repo_tree(repo_id, recursive=True))  # more entries than one page
    paths = {entry.path for entry in tree}
    assert set(files) | {"a0", "a1", "a2", "a3", ".gitattributes"} == paths
    top = {e.path for e in api.list_repo_tree(repo_id)}
    assert top == {"a0", "a1", "a2", "a3", ".gitattributes"}
    lfs = next(e for e in tree if e.path == "a0/adapter_model.safetensors")
    assert lfs.lfs.sha256 == hashlib.sha256(files["a0/adapter_model.safetensors"]).hexdigest()
    info = api.get_paths_info(repo_id, ["a1/adapter_config.json", "a2", "missing.txt"], expand=True)
    assert {e.path for e in info} == {"a1/adapter_config.json", "a2"}
    assert all(e.last_commit is not None for e in info)


def test_create_pr_opens_a_pr_ref_and_leaves_main(api, hub_online):  # noqa: F811
    from huggingface_hub import CommitOperationAdd

    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    main = api.model_info(repo_id).sha
    info = api.create_commit(repo_id, [CommitOperationAdd("x.txt", b"pr")], commit_message="pr", create_pr=True)
    assert info.pr_url.endswith("/discussions/1") and info.pr_revision == "refs/pr/1"
    assert api.model_info(repo_id).sha == main
    assert api.model_info(repo_id, revision="refs/pr/1").sha == info.oid
    prs = api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests
    assert [(p.ref, p.target_commit) for p in prs] == [("refs/pr/1", info.oid)]


def test_parent_commit_must_be_the_head(api, hub_online):  # noqa: F811
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    old = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(repo_id, [CommitOperationAdd("b.txt", b"2")], commit_message="x", parent_commit=old)
    assert err.value.response.status_code == 412


def test_list_models_filters_by_base_model_tags(api, hub_online, tmp_path):  # noqa: F811
    from huggingface_hub import HfApi

    base = f"acme/base-{os.urandom(3).hex()}"
    api.create_repo(base)  # the Hub only accepts cards whose base_model it hosts
    card = f"---\nbase_model: {base}\nbase_model_relation: adapter\nlibrary_name: peft\ntags: [lora]\n---\n".encode()
    repos = [hub_online.repo_id("lora"), hub_online.repo_id("lora", namespace="acme")]
    for repo_id in repos:
        api.create_repo(repo_id)
        api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_id)
    private = hub_online.repo_id("secret")
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=private)

    found = list(api.list_models(filter=f"base_model:adapter:{base}"))
    assert {m.id for m in found} == {*repos, private}  # not the base itself: it is no adapter
    assert all("peft" in m.tags and f"base_model:{base}" in m.tags for m in found)
    assert {m.id for m in api.list_models(filter=f"base_model:adapter:{base}", author="acme")} == {repos[1]}
    assert len(list(api.list_models(filter=f"base_model:adapter:{base}", limit=2))) == 2
    bob = HfApi(endpoint=hub_online.url, token="hf_bob_token")
    assert {m.id for m in bob.list_models(filter=f"base_model:adapter:{base}")} == set(repos)
    assert api.model_info(repos[0]).card_data["base_model"] == base
    with pytest.raises(ValueError, match='"base_model" with value "nobody/nothing" is not valid'):
        api.upload_file(path_or_fileobj=b"---\nbase_model: nobody/nothing\n---\n", path_in_repo="README.md",
                        repo_id=repos[0])


def test_errors_carry_the_hub_error_codes(api, hub_online):  # noqa: F811
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id = hub_online.repo_id()
    api.create_repo(repo_id, private=True)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(hub_online.repo_id("missing"))
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.json", endpoint=hub_online.url, token=hub_online.token)
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(repo_id)
    assert conflict.value.response.status_code == 409
    api.create_repo(repo_id, exist_ok=True)
    bob = HfApi(endpoint=hub_online.url, token="hf_bob_token")
    with pytest.raises(RepositoryNotFoundError):  # private: invisible to others
        bob.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub_online.url, token=False).model_info(repo_id)
    with pytest.raises(HfHubHTTPError) as forbidden:
        bob.create_repo(f"alice/{os.urandom(3).hex()}")
    assert forbidden.value.response.status_code == 403


def test_snapshot_download_reproduces_the_folder(api, hub_online, tmp_path):  # noqa: F811
    from huggingface_hub import snapshot_download

    files = {"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": _payload(), "sub/x.txt": b"x"}
    repo_id = hub_online.repo_id()
    api.create_repo(repo_id)
    sha = api.upload_folder(repo_id=repo_id, folder_path=_folder(tmp_path / "up", files)).oid
    out = snapshot_download(repo_id, revision=sha, local_dir=tmp_path / "snap", endpoint=hub_online.url)
    for name, data in files.items():
        assert (tmp_path / "snap" / name).read_bytes() == data
    assert str(out) == str(tmp_path / "snap")
