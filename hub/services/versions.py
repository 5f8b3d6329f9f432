"""Versions and aliases of a registered name: list them, point an alias at a version."""

from __future__ import annotations

from hub.errors import NotFound, UsageError
from hub.refs import check_alias, parse_ref, try_parse_ref
from hub.registry import reading
from hub.registry import versions as qv
from hub.results import VersionRecord


class VersionService:
    """`hub versions` and `hub alias`, and what a ref removes. Needs the adapters service."""

    def __init__(self, ctx, adapters):
        self.db = ctx.db
        self.adapters = adapters

    def removal_targets(self, name: str, force: bool = False) -> tuple[str, list]:
        """(label, records) that `rm name` removes: every version of a bare NAME; the one
        version of NAME@N / NAME@ALIAS, refused while aliased unless ``force``."""
        ref = try_parse_ref(name)
        if ref is None:
            raise NotFound(f"no adapter named {name!r}", None, "see `hub list` for registered names")
        if ref.is_latest and "@" not in name:
            with self.db.read() as conn:
                rows = qv.rows_of(conn, ref.name)
            if not rows:
                raise NotFound(f"no adapter named {name!r}", None, "see `hub list` for registered names")
            return name, [self.adapters.get(f"{r.name}@{r.version}") for r in rows]
        record = self.adapters.get(name)
        label = f"{record.name}@{record.version}"
        if record.aliases and not force:
            raise UsageError(f"{label} is aliased as {', '.join(record.aliases)}", None,
                             "move or drop the alias with `hub alias`, or pass --force to drop it too")
        return label, [record]

    def versions(self, name: str) -> list[VersionRecord]:
        """Every version of ``name``, oldest first."""
        with self.db.read() as conn:
            return reading.versions(reading.Alchemy(conn), name)

    def versions_or_none(self, name: str) -> list[VersionRecord]:
        """Every version of the plain name ``name`` (no @), oldest first; [] if none."""
        with self.db.read() as conn:
            return reading.versions_or_none(reading.Alchemy(conn), name)

    def alias(self, name: str, alias: str, version: str | int | None = None, remove: bool = False):
        """Point ``name@alias`` at ``version`` (a number, or any ref of the same name), or drop it.
        Returns the version record the alias now names (None after a removal)."""
        from hub.registry.adapters import now

        ref = parse_ref(name)
        if not ref.is_latest:
            raise UsageError(f"alias takes a name, not a version ({name!r})", None,
                             f"hub alias {ref.name} {alias} VERSION")
        if remove:
            with self.db.write() as conn:
                if not qv.drop_alias(conn, ref.name, alias):
                    raise NotFound(f"{ref.name} has no alias {alias!r}", None, f"see `hub versions {ref.name}`")
            return None
        check_alias(alias)
        if version is None:
            raise UsageError("which version should the alias name?", None, f"hub alias {ref.name} {alias} N")
        target = parse_ref(f"{ref.name}@{version}")
        with self.db.write() as conn:
            row = qv.resolve(conn, target)
            if row is None:
                raise NotFound(f"no version {str(target)!r}", None, f"see `hub versions {ref.name}`")
            qv.set_alias(conn, ref.name, alias, row.id, now())
        return next(v for v in self.versions(ref.name) if v.version == row.version)


__all__ = ["VersionService", "VersionRecord"]
