"""Keys typed ahead. A paste, or a fast typist's `:sort` or `tprod`, arrives in one burst, and
Textual hands every key of it to the focused widget at once; a key's screen binding runs only
when the key has bubbled back up to the app. So the letters after `:` reached the table before
`:` had opened command mode, and were lost. Here a key goes on only when the one before has
been handled (its bindings run, or a widget kept it) and the screen it may have opened is
mounted: as the keys would have gone at human speed."""

from __future__ import annotations

from collections import deque
from time import monotonic
from typing import Awaitable, Callable

from textual import events

POLL = 0.005     # seconds between looks at a key or a screen still under way
KEY_WAIT = 0.25  # a key that neither comes back up nor is kept (its widget went away) is let go
MOUNT_WAIT = 2.0  # a screen that never finishes mounting does not keep the keys


class TypeAhead:
    def __init__(self, app, deliver: Callable[[events.Key], Awaitable[None]]) -> None:
        self._app = app
        self._deliver = deliver            # the app's own handling of a key
        self._held: deque[events.Key] = deque()
        self._key: events.Key | None = None   # the key under way
        self._key_sent = 0.0
        self._waiting_since = 0.0
        self._polling = False

    def _key_busy(self) -> bool:
        key = self._key
        # _stop_propagation: a widget kept the key (an Input took a letter); it goes no further
        if key is not None and (key._stop_propagation or monotonic() - self._key_sent > KEY_WAIT):
            self._key = None
        return self._key is not None

    def _ready(self) -> bool:
        return not self._key_busy() and (self._app.screen.is_mounted
                                         or monotonic() - self._waiting_since > MOUNT_WAIT)

    async def handle(self, event: events.Key) -> None:
        """A key from the terminal: handled now, or kept behind the keys waiting already."""
        if not self._held:
            self._waiting_since = monotonic()    # MOUNT_WAIT counts from now, not from an old wait
            if self._ready():
                await self._send(event)
                return
        self._held.append(event)
        self._poll()

    def came_back(self, event: events.Key) -> None:
        """The app saw ``event`` bubble back up (its bindings have run)."""
        if event is self._key:
            self._key = None
            if self._held:
                self._app.call_later(self._release)

    async def _send(self, event: events.Key) -> None:
        self._key, self._key_sent = event, monotonic()
        await self._deliver(event)
        if not event.is_forwarded:
            self._key = None   # a priority binding took it at the app: done already

    def _poll(self) -> None:
        if not self._polling:
            self._polling = True
            self._app.set_timer(POLL, self._tick)

    async def _tick(self) -> None:
        self._polling = False
        await self._release()

    async def _release(self) -> None:
        while self._held and self._ready():
            await self._send(self._held.popleft())
            self._waiting_since = monotonic()
        if self._held:
            self._poll()
