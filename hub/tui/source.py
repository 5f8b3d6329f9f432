"""Where the adapter table's rows come from: SQL at first, then the in-memory browse index.

The first paint needs one count and one page, which SQL answers in milliseconds. Typing
a filter needs more: on a large registry an unindexed SQL filter reads the whole table,
so the index (hub.browsing.browse_index) is loaded in the background, in name order, in chunks.
From its first chunk it answers the name-ordered filters whose first page it already
holds (exactly: the rows before the last loaded name are all there), with a count that
is a lower bound until the load ends (``partial``); the rest goes to SQL until then.
Changes made from the TUI are applied to it at once (hub.browsing.refresh_browse_index); changes
made elsewhere show after f5, which reloads it. The table shows no Source column, so rows
are read without their source labels (which sit after each row's JSON).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from hub.listing.filters import ListFilter


def _unfiltered(flt: ListFilter) -> bool:
    return flt == replace(ListFilter(), sort=flt.sort, desc=flt.desc, limit=flt.limit, offset=flt.offset)


# Typing counts as paused this long after the last keystroke. Until then the details pane and
# the footer wait (hub.tui.screens.main), and so does the index loader, between its steps.
TYPING_PAUSE = 0.3
STEP_ASIDE = 0.05      # the longest pause per loading step: the load still goes on while typing


class RegistrySource:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.index = None
        self._lock = threading.Lock()
        self._loading: object | None = None
        self._first_chunk = threading.Event()
        self._first_chunk.set()      # nothing loading: nothing to wait for
        # time.monotonic() of the user's last keystroke (the screen sets it); none yet is -inf, not 0:
        # monotonic() counts from boot, and a machine up for less than TYPING_PAUSE would count as typing
        self.last_input = float("-inf")

    def _index(self, flt: ListFilter):
        """The index; a filter asked just before its first chunk waits for it (a fraction of
        a second) instead of scanning the table in SQL (seconds). Runs in worker threads."""
        if self.index is None and not _unfiltered(flt):
            self._first_chunk.wait(30)
        return self.index

    @property
    def indexed(self) -> bool:
        """The index is loaded completely."""
        index = self.index
        return index is not None and index.complete

    def partial(self, flt: ListFilter) -> bool:
        """count_matching(flt) is a lower bound (the index is still loading)."""
        index = self._index(flt)
        return index is not None and not index.complete and not _unfiltered(flt) and index.supports(flt)

    def _pick(self, flt: ListFilter):
        index = self._index(flt)
        return index if index is not None and index.supports(flt) else self.hub.browsing

    def list_rows(self, flt: ListFilter):
        index = self._index(flt)
        if index is not None and index.supports(flt) and (index.has_page(flt) or self.partial(flt)):
            return index.list_rows(flt, sources=False)   # partial: the rows so far, re-asked per chunk
        return self.hub.browsing.list_rows(flt, sources=False)

    def count_matching(self, flt: ListFilter) -> int:
        index = self._index(flt)
        if index is not None and not index.complete and _unfiltered(flt):
            return self.hub.browsing.count_matching(flt)     # exact and instant in SQL
        return self._pick(flt).count_matching(flt)

    def position_of(self, name: str, flt: ListFilter) -> int | None:
        index = self._index(flt)
        if index is not None and not index.complete:
            found = index.position_of(name, flt) if index.supports(flt) else None
            return found if found is not None or self.partial(flt) else self.hub.browsing.position_of(name, flt)
        return self._pick(flt).position_of(name, flt)

    def begin_load(self) -> None:
        """Drop the index before (re)loading it (on the UI thread: filters wait for the new one)."""
        self.index = None
        self._loading = object()
        self._first_chunk.clear()

    def load_index(self, on_chunk=None) -> int:
        """Build the index (in a worker thread), answering from its first chunk on; returns
        how many adapters it holds. A newer load (f5) makes an older one's chunks go unused."""
        if self._loading is None or self.index is not None:
            self.begin_load()
        token = self._loading

        def grew(index) -> None:
            _settle_heap()
            if self._loading is token:
                self.index = index
                self._first_chunk.set()
                if on_chunk is not None:
                    on_chunk()

        try:
            index = self.hub.browsing.browse_index(on_chunk=grew, between=self._step_aside)
            index.prepare_keys(between=self._step_aside)
            _settle_heap()
            with self._lock:
                if self._loading is token:
                    self.index = index
        finally:
            if self._loading is token:
                self._first_chunk.set()
        return len(index)

    def _step_aside(self) -> None:
        """While the user types, the loader pauses between its steps (up to STEP_ASIDE each):
        it shares the interpreter with the UI thread, whose keystrokes would wait for it."""
        now = time.monotonic()
        deadline = now + STEP_ASIDE
        while now - self.last_input < TYPING_PAUSE and now < deadline:
            time.sleep(0.005)
            now = time.monotonic()

    def warm_next(self) -> bool:
        """One more sort order ahead of its first use (worker thread, while the user is idle)."""
        index = self.index
        return index is not None and index.complete and index.warm_next()

    def changed(self, *names: str) -> None:
        """Adapters added, changed, renamed (old and new name) or removed from this TUI."""
        index = self.index
        if index is not None:
            self.hub.browsing.refresh_browse_index(index, names)


def _settle_heap() -> None:
    """Move the loaded index out of the cyclic collector's view.

    100,000 adapters are millions of tracked objects that live as long as the index; every
    full collection walked them all (100-300 ms pauses under a keystroke). Frozen objects are
    still freed by reference counting when a reload drops the index."""
    import gc

    gc.collect(1)    # young garbage first, so none of it is frozen
    gc.freeze()

