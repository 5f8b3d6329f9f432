"""Where the adapter table's rows come from: SQL at first, then the in-memory browse index.

The first paint needs one count and one page, which SQL answers in milliseconds. Typing
a filter needs more: on a large registry an unindexed SQL filter reads the whole table,
so the index (Hub.browse_index) is loaded in the background and answers from then on.
Changes made from the TUI are applied to it at once (Hub.refresh_browse_index); changes
made elsewhere show after f5, which reloads it. The table shows no Source column, so rows
are read without their source labels (which sit after each row's JSON).
"""

from __future__ import annotations

import threading

from hub.registry.adapters import ListFilter


class RegistrySource:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.index = None
        self._lock = threading.Lock()

    @property
    def indexed(self) -> bool:
        return self.index is not None

    def _pick(self, flt: ListFilter):
        index = self.index
        return index if index is not None and index.supports(flt) else self.hub

    def list_rows(self, flt: ListFilter):
        index = self.index
        if index is not None and index.supports(flt):
            return index.list_rows(flt, sources=False)
        return self.hub.list_rows(flt, sources=False)

    def count_matching(self, flt: ListFilter) -> int:
        return self._pick(flt).count_matching(flt)

    def position_of(self, name: str, flt: ListFilter) -> int | None:
        return self._pick(flt).position_of(name, flt)

    def load_index(self) -> int:
        """Build the index (in a worker thread); returns how many adapters it holds."""
        index = self.hub.browse_index()
        with self._lock:
            self.index = index
        return len(index)

    def changed(self, *names: str) -> None:
        """Adapters added, changed, renamed (old and new name) or removed from this TUI."""
        index = self.index
        if index is not None:
            self.hub.refresh_browse_index(index, names)
