"""Find adapters on the Hub, and ask where a remote revision points now."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.sync.remote import Remote
from hub.sync.spec import check_repo_id


@dataclass(frozen=True)
class RemoteModel:
    repo_id: str
    tags: tuple[str, ...] = ()
    downloads: int | None = None
    likes: int | None = None
    library: str | None = None
    created_at: str | None = None
    base_models: tuple[str, ...] = field(default_factory=tuple)   # from base_model:adapter:X tags

    def to_dict(self) -> dict:
        return {"repo_id": self.repo_id, "base_models": list(self.base_models), "library": self.library,
                "downloads": self.downloads, "likes": self.likes, "created_at": self.created_at,
                "tags": list(self.tags)}


def search(remote: Remote, base: str | None = None, author: str | None = None, query: str | None = None,
           limit: int = 50) -> list[RemoteModel]:
    """Adapters for ``base`` (the Hub's base_model:adapter:BASE tag), else PEFT repos."""
    if base:
        check_repo_id(base)
    filters = [f"base_model:adapter:{base}"] if base else ["peft"]
    out = []
    with remote.errors():   # parsing too: a reply of the wrong shape is the Hub's error, not hub's
        for m in remote.api.list_models(filter=filters, author=author or None, search=query or None, limit=limit):
            tags = tuple(str(t) for t in (m.tags or ()))
            bases = tuple(t.split(":", 2)[2] for t in tags if t.startswith("base_model:adapter:"))
            created = m.created_at.isoformat() if getattr(m, "created_at", None) else None
            out.append(RemoteModel(str(m.id), tags, _int(m.downloads), _int(m.likes),
                                   m.library_name if isinstance(m.library_name, str) else None, created, bases))
    return out


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def head(remote: Remote, repo_id: str, revision: str | None) -> str | None:
    """The commit ``revision`` points to now, or None if the repo or revision is gone."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    with remote.errors(repo_id, revision):
        try:
            return remote.api.model_info(repo_id, revision=revision or "main", expand=["sha"]).sha
        except (RepositoryNotFoundError, RevisionNotFoundError):
            return None


def model_exists(remote: Remote, repo_id: str) -> bool | None:
    """Whether a model repo exists on the Hub; None when the Hub would not say (gated, refused)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    with remote.errors(repo_id):
        try:
            remote.api.model_info(repo_id, revision="main", expand=["sha"])
            return True
        except GatedRepoError:
            return True
        except RepositoryNotFoundError:
            return False
        except HfHubHTTPError:
            return None
