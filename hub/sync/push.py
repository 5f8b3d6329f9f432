"""Upload an adapter's files to a Hub repo as one commit.

The repo is created if needed; a branch other than main is created from main.
huggingface_hub skips files whose content the remote already has, and a push
that changes nothing creates no commit. ``parent_commit`` makes a concurrent
push fail instead of silently interleaving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hub.sync import http_bounds
from hub.sync.remote import Remote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    revision: str          # the branch pushed to, or refs/pr/N
    commit: str            # the remote head after the push
    changed: bool          # False: content was already there, no commit made
    created_repo: bool
    pr_url: str | None = None
    url: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit, "changed": self.changed,
                "created_repo": self.created_repo, "pr_url": self.pr_url, "url": self.url, "notes": list(self.notes)}


def upload(remote: Remote, repo_id: str, files: dict[str, Path | bytes], *, message: str,
           private: bool = False, branch: str | None = None, create_pr: bool = False) -> PushResult:
    """``files`` maps paths in the repo to local files or bytes."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import RepositoryNotFoundError

    api = remote.api
    branch = branch or "main"
    created = False
    notes = []
    total = sum(src.stat().st_size if isinstance(src, Path) else len(src) for src in files.values())
    log.debug("pushing %d files (%d bytes) to %s, branch %s%s", len(files), total, repo_id, branch,
              " as a pull request" if create_pr else "")
    with remote.errors(repo_id, branch, seconds=http_bounds.download_seconds(total)):
        try:
            info = api.repo_info(repo_id, revision="main")   # mirrors serve only /revision/<rev>
            if private and not info.private:
                notes.append(f"{repo_id} already exists and is public; --private applies only to new repos")
        except RepositoryNotFoundError:
            api.create_repo(repo_id, private=private, exist_ok=True)
            created = True
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        head = api.model_info(repo_id, revision=branch).sha
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(src) if isinstance(src, Path) else src)
                      for path, src in sorted(files.items())]
        info = api.create_commit(repo_id, operations, commit_message=message, revision=branch,
                                 create_pr=create_pr, parent_commit=None if create_pr else head)
    changed = info.oid != head
    revision = info.pr_revision if (create_pr and info.pr_revision) else branch
    return PushResult(repo_id, revision, info.oid, changed, created, info.pr_url if changed else None,
                      f"{remote.public}/{repo_id}", tuple(notes))
