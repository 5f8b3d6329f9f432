"""The reading side of hub for one process: what the CLI's reading commands call.

``Reader`` answers with the registry's reading engine (hub.registry.reading) on the
stdlib-sqlite3 runner (hub.registry.fastread) where it can, and otherwise from
``hub.service.Hub``, whose reading methods run the same engine through SQLAlchemy: the
answers are the same either way, and a fresh process that only reads never imports
SQLAlchemy. Its methods have the names and signatures of Hub's. Importing this module is
cheap; the engine and the Hub load on first use.
"""

from __future__ import annotations

from typing import Callable

# The list filter language, for front-ends (they import nothing of hub.registry)
from hub.listing.filters import ListFilter  # noqa: F401 - re-exported
from hub.flags import FLAG_MEANINGS, FLAGS  # noqa: F401
from hub.listing.query import merge_filter_options, parse_query  # noqa: F401

_UNANSWERED = object()


class Reader:
    def __init__(self, home, db_url: str | None, hub: Callable[[], object]):
        """``hub()``: the Hub to fall back on (opened on first need)."""
        self.home = home
        self.db_url = db_url
        self._hub = hub
        self._fast_off = False

    def _fast(self, op: Callable, *args):
        """``op(runner, *args)`` on the fast runner, or _UNANSWERED where it cannot serve."""
        if self._fast_off:
            return _UNANSWERED
        from hub.registry import fastread, reading

        with fastread.open_text(self.home, self.db_url) as run:
            if run is None:
                self._fast_off = True   # not a SQLite file at the head revision: the Hub decides
                return _UNANSWERED
            try:
                return op(run, *args)
            except reading.Stale:
                return _UNANSWERED

    def _answer(self, op_name: str, hub_method: str, *args, **kwargs):
        from hub.registry import reading

        found = self._fast(getattr(reading, op_name), *args)
        return getattr(self._hub(), hub_method)(*args, **kwargs) if found is _UNANSWERED else found

    # -- the reading methods of hub.service.Hub ------------------------------------------

    def list(self, flt: ListFilter | None = None, full: bool = False, raw: bool = False) -> list:
        """``raw``: JSON columns stay RawJSON text (for printing only; the Hub parses them)."""
        from hub.registry import fastread

        flt = flt or ListFilter()
        found = self._fast(fastread.list_records, flt, full, raw)
        if found is _UNANSWERED or found is None:   # None: this filter's shape is not compiled yet
            return self._hub().list(flt, full=full)
        return found

    def count(self) -> int:
        return self._answer("count", "count")

    def base_id(self, name: str) -> int:
        return self._hub().base_id(name)

    def get(self, name: str):
        return self._answer("get_adapter", "get", name)

    def versions(self, name: str) -> list:
        return self._answer("versions", "versions", name)

    def list_bases(self) -> list:
        return self._answer("list_bases", "list_bases")

    def get_base(self, name: str):
        return self._answer("get_base", "get_base", name)

    def list_models(self) -> list:
        return self._answer("list_models", "list_models")

    def get_model(self, name: str):
        return self._answer("get_model", "get_model", name)

    def remote_status(self, name: str | None = None, check: bool = True) -> list:
        from hub.registry import reading

        if not check:
            found = self._fast(lambda run, n: reading.unchecked_states(reading.recorded_remotes(run, n)), name)
            if found is not _UNANSWERED:
                return found
        return self._hub().remote_status(name, check=check)

    def check_base_all(self, base: str, refresh: bool = False, progress=None):
        """Stored verdicts answer when every one is current; else the Hub checks and stores."""
        if not refresh:
            from hub.registry import reading

            found = self._fast(reading.stored_batch, base)
            if found is not _UNANSWERED:
                return found
        return self._hub().check_base_all(base, refresh=refresh, progress=progress)
