"""Checks on what users type and on what a remote sends back, before any transfer.

``REPO_ID[@REVISION]`` is parsed and validated the way the Hub names repos; file
paths in a remote listing are refused unless they are plain relative POSIX paths,
so that no listing can make hub write outside its download folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.errors import InvalidAdapter, UsageError
from hub.names import check_text

# namespace/name or a legacy bare name; the Hub's own rules (no "--" or "..", no ".git" suffix)
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?|[A-Za-z0-9]"
_REPO_ID = re.compile(rf"(?:(?:{_PART})/)?(?:{_PART})")
_REVISION_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|//|@\{|^/|/$|\.lock$|^-")


@dataclass(frozen=True)
class RepoSpec:
    repo_id: str
    revision: str | None = None   # None: the default branch

    @property
    def label(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


def check_repo_id(repo_id: str) -> str:
    return check_text(repo_id, _REPO_ID, "Hub repo id",
                      "write NAMESPACE/NAME (letters, digits, - _ .), e.g. my-org/my-lora",
                      also=lambda r: "--" not in r and ".." not in r and not r.endswith(".git"))


def check_revision(revision: str) -> str:
    if not revision or len(revision) > 255 or _REVISION_BAD.search(revision):
        shown = revision.encode("unicode_escape").decode()
        raise UsageError(f"invalid revision {shown!r}", None, "use a branch, a tag or a 40-hex commit id")
    return revision


def parse_spec(text: str) -> RepoSpec:
    """'org/name@rev' -> RepoSpec; also accepts a full https://host/org/name URL."""
    text = text or ""   # not stripped: "org/name\n" is refused, never silently cleaned
    m = re.match(r"^https?://[^/]+/(?P<rest>.+)$", text)
    if m:
        text = m.group("rest").rstrip("/")
    repo_id, sep, revision = text.partition("@")
    check_repo_id(repo_id)
    if sep:
        check_revision(revision)
    return RepoSpec(repo_id, revision if sep else None)


def check_subfolder(subfolder: str | None) -> str:
    """'' for the repo root; otherwise a safe relative path without trailing slash."""
    if subfolder is None:
        return ""
    cleaned = subfolder.strip().strip("/")
    if cleaned in ("", "."):
        return ""
    if unsafe_reason(cleaned):
        raise UsageError(f"invalid subfolder {subfolder!r}", None, "use a relative path inside the repo, e.g. adapters/sql")
    return cleaned


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` is not a plain relative POSIX file name, or None."""
    if not isinstance(path, str) or not path:
        return "empty"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute"
    if "\\" in path or any(ord(c) < 32 for c in path):
        return "backslash or control character"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "'..', '.' or empty segment"
    return None


def check_remote_paths(paths, where: str) -> None:
    """Refuse a listing that names any file outside the repo (``..``, absolute, ...)."""
    for path in paths:
        reason = unsafe_reason(path)
        if reason:
            shown = path.encode("unicode_escape").decode() if isinstance(path, str) else repr(path)
            raise InvalidAdapter(f"remote lists an unsafe file name {shown!r} ({reason})", where,
                                 "refusing to download from it; a real Hub never serves such names: check HF_ENDPOINT")
