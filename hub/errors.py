"""One error tree for hub.

Every error carries three things a user needs on one line: what went wrong,
where (a file, a name, a URL), and what to do about it. Front-ends print
``str(err)`` and exit with ``err.exit_code``; nothing else is needed.

Library callers can also catch the matching builtin, as with huggingface_hub's errors:
``NotFound`` is a ``LookupError``, bad input a ``ValueError``, ``AlreadyExists`` a
``FileExistsError``, ``Unsupported`` a ``NotImplementedError``, the store, the disk and
the remote ``OSError``. A ``try`` around file I/O that catches ``OSError`` must therefore
let ``HubError`` through first (``except HubError: raise``) where its body can raise one.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from hub.findings import Finding


class HubError(Exception):
    """Base of every error hub raises on purpose."""

    exit_code = 1

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = self.what
        if self.where:
            text += f" ({self.where})"
        if self.fix:
            text += f": {self.fix}"
        # one line, always: messages end up in logs and terminal status bars; control
        # characters from user input or a server (a path, a name, error text) are shown
        # escaped, never emitted, and anything token-shaped is masked
        from hub.redact import redact
        from hub.terminal_text import inert

        return inert(redact(" ".join(text.split())))


class UsageError(HubError, ValueError):
    exit_code = 2


class NotFound(HubError, LookupError):
    """A named adapter, base, file or remote that does not exist."""


class AlreadyExists(HubError, FileExistsError):
    """A name that is taken or content that is already registered."""


class InvalidAdapter(HubError, ValueError):
    """An adapter folder or file that cannot be read as a PEFT LoRA adapter."""


class InvalidConfig(InvalidAdapter):
    """adapter_config.json missing, not JSON, or violating the schema."""


class InvalidSafetensors(InvalidAdapter):
    """A safetensors file whose header or layout is broken or unsafe."""


class UnsafeFormat(InvalidAdapter):
    """Pickle-based weights (.bin/.pt) that hub refuses to unpickle."""


class InvalidBaseModel(HubError, ValueError):
    """A base model folder that cannot be read."""


class Incompatible(HubError, ValueError):
    """A check found errors; carries the findings."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None,
                 findings: Iterable[Finding] = ()):
        super().__init__(what, where, fix)
        self.findings = list(findings)


class Unsupported(HubError, NotImplementedError):
    """A valid request hub cannot carry out exactly (and will not fake)."""


class RemoteError(HubError, OSError):
    """The Hugging Face Hub (or the configured endpoint) failed or refused."""


class StoreError(HubError, OSError):
    """The content-addressed store is damaged or disagrees with the registry."""


class DatabaseError(HubError):
    """The registry database cannot be opened, migrated or written."""


class IntegrityError(HubError, ValueError):
    """Data that does not match its recorded hash, size or values (NaN/Inf)."""


class DiskFull(HubError, OSError):
    """No space (or quota) left where hub writes."""

    @classmethod
    def check(cls, exc: BaseException, where: object) -> None:
        """Raise DiskFull for ENOSPC/EDQUOT (an error *writing* at ``where``, not reading a source)."""
        import errno

        if isinstance(exc, OSError) and not isinstance(exc, HubError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on the device"
            raise cls(f"{what} while writing", str(exc.filename or where),
                      "free space there (or raise the quota) and run the command again; nothing was registered") \
                from None
