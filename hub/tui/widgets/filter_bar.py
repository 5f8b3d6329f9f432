"""The filter box: one line of the filter language (hub.listing.query), applied as you type.

`/` focuses it with the current filter selected, so typing starts a new filter (as a
browser's find box; → or End keeps the text to edit it); Enter or ↓ goes back to the table
keeping the filter; Esc clears it (and a second Esc leaves). A term that does not parse leaves the last good filter in place and
says what is wrong on the right of the box.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.widgets import Input, Label, Static

from hub.errors import HubError
from hub.listing.query import Query, parse_query

PLACEHOLDER = "/ to filter: words  base:  r:  alpha:  target:  tag:  flag:  fits:"


class FilterInput(Input):
    # Input sets its virtual size on every keystroke, and a virtual size change lays out the
    # whole screen (10-30 ms at 120x36, more than the filter itself). One line of fixed size
    # scrolls its text itself and has no scrollbar: a repaint is enough.
    virtual_size = Reactive(Size(0, 0), layout=False, repaint=True)

    BINDINGS = [
        Binding("escape", "clear_or_leave", "Clear", show=True),
        Binding("down", "leave", "To the list", show=True),
        Binding("enter", "leave", "Apply", show=True),
    ]

    def action_clear_or_leave(self) -> None:
        if self.value:
            self.value = ""
        else:
            self.post_message(FilterBar.Done())

    def action_leave(self) -> None:
        self.post_message(FilterBar.Done())


class FilterBar(Horizontal):
    class Changed(Message):
        def __init__(self, query: Query) -> None:
            super().__init__()
            self.query = query

    class Done(Message):
        """Enter, ↓ or Esc on an empty box: go back to the table."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.query: Query = parse_query("")
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        yield Label("Filter", classes="filter-label")
        yield FilterInput(placeholder=PLACEHOLDER, id="filter", compact=True, classes="filter-input",
                          select_on_focus=False)
        yield Static("", id="filter-problem", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one("#filter", Input)

    @property
    def text(self) -> str:
        return self.input.value

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        problem = self.query_one("#filter-problem", Static)
        try:
            query = parse_query(event.value)
        except HubError as exc:
            self.problem = exc.line()
            problem.update(self.problem)
            problem.display = True
            return
        self.problem = None
        if problem.display:     # setting it anyway lays out the screen (the first time, at least)
            problem.display = False
        self.query = query
        self.post_message(self.Changed(query))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())

    def set_text(self, text: str) -> None:
        self.input.value = text

    def clear(self) -> None:
        self.input.value = ""

    def focus_field(self) -> None:
        # selected, not appended to: `/name` after an earlier filter must find name, not
        # "earliername" (which matched nothing and left no adapter under the cursor)
        # Focused now, not after the keys already queued (Widget.focus defers): in a burst
        # such as a paste of `/dora`, the letters after the slash belong to the filter.
        self.screen.set_focus(self.input)
        self.input.select_all()
