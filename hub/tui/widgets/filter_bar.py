"""One row of filter fields (free text, base, rank, target, tag), applied as you type."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from hub.registry.adapters import ListFilter


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in text.replace(",", " ").split() if w)


@dataclass(frozen=True)
class FilterSpec:
    text: str = ""
    base: str = ""
    rank: str = ""
    target: str = ""
    tag: str = ""

    def to_filter(self, sort: str = "name", desc: bool = False) -> ListFilter:
        rank = int(self.rank) if self.rank.strip().lstrip("-").isdigit() else None
        return ListFilter(search=self.text.strip() or None, base=self.base.strip() or None, rank=rank,
                          targets=_words(self.target), tags=_words(self.tag), sort=sort, desc=desc)

    @property
    def empty(self) -> bool:
        return not any(v.strip() for v in (self.text, self.base, self.rank, self.target, self.tag))


FIELDS = (
    # id, label, placeholder, input type
    ("text", "Find", "press / to search names", "text"),
    ("base", "Base", "model", "text"),
    ("rank", "R", "", "integer"),
    ("target", "Target", "q_proj,…", "text"),
    ("tag", "Tag", "", "text"),
)


class FilterBar(Horizontal):
    class Changed(Message):
        def __init__(self, spec: FilterSpec) -> None:
            super().__init__()
            self.spec = spec

    class Done(Message):
        """Enter or escape in a field: go back to the table."""

    def compose(self) -> ComposeResult:
        for key, label, placeholder, kind in FIELDS:
            yield Label(label, classes="filter-label")
            yield Input(placeholder=placeholder, id=f"filter-{key}", type=kind, compact=True,
                        classes="filter-input", select_on_focus=False)

    @property
    def spec(self) -> FilterSpec:
        return FilterSpec(**{key: self.query_one(f"#filter-{key}", Input).value for key, *_ in FIELDS})

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self.spec))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())

    def clear(self) -> None:
        for key, *_ in FIELDS:
            self.query_one(f"#filter-{key}", Input).value = ""

    def focus_field(self, key: str = "text") -> None:
        field = self.query_one(f"#filter-{key}", Input)
        field.focus()
        field.select_all()   # typing starts a new search; arrows keep the old one
