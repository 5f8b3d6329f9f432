"""`c`: check an adapter against a base model; findings listed with severity colours."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from hub.tui.format import inert
from hub.tui.jobs import run_in_thread
from hub.tui.widgets.details import findings_content


def verdict_content(report) -> Content:
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = sum(f.severity == "warning" for f in report.findings)
    counts = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    if report.compatible:
        return Content.assemble(("✔ compatible", "bold $text-success"), inert(f" with {report.against}  ({counts})"))
    return Content.assemble(("✘ not compatible", "bold $text-error"), inert(f" with {report.against}  ({counts})"))


class CheckScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, hub, name: str) -> None:
        super().__init__(classes="dialog-screen")
        self.hub = hub
        self.adapter = name
        self.report = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog check-dialog"):
            yield Label(inert(f"Check {self.adapter} against a base model"), classes="dialog-title", markup=False)
            with Horizontal(classes="form-row"):
                yield Label("Base", classes="form-label")
                yield Input(placeholder="registered base name, or a model folder", id="check-base", compact=True)
            yield Static("", id="check-bases", classes="form-hint", markup=False)
            yield Static("", id="check-verdict")
            with VerticalScroll(id="check-findings-box"):
                yield Static("", id="check-findings")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Check", id="check-go", variant="primary")
                yield Button("Close", id="check-close")

    def on_mount(self) -> None:
        self.query_one("#check-base", Input).focus()
        hub, name = self.hub, self.adapter

        def suggestions():
            bases = [b.name for b in hub.list_bases()]
            rec = hub.get(name)
            guess = rec.base or (rec.base_model if rec.base_model and Path(rec.base_model).is_dir() else None)
            return bases, guess

        run_in_thread(self, suggestions, self._suggest)

    def _suggest(self, result) -> None:
        bases, guess = result
        field = self.query_one("#check-base", Input)
        field.suggester = SuggestFromList(bases, case_sensitive=False)
        if guess and not field.value:
            field.value = guess
            field.select_all()
        hint = inert(f"registered bases: {', '.join(bases)}") if bases else \
            "no registered bases yet (`hub base add PATH`); a model folder works too"
        self.query_one("#check-bases", Static).update(hint)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check-go":
            self.run_check()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

    def run_check(self) -> None:
        base = self.query_one("#check-base", Input).value.strip()
        if not base:
            self.query_one("#check-verdict", Static).update("give a base: a registered name or a model folder")
            return
        self.report = None
        self.query_one("#check-verdict", Static).update(f"checking against {base} …")
        self.query_one("#check-findings", Static).update("")     # never the last check's findings
        hub, name = self.hub, self.adapter
        run_in_thread(self, lambda: hub.check(name, base), self._show, self._failed, group="check", exclusive=True)

    def _show(self, report) -> None:
        self.report = report
        self.query_one("#check-verdict", Static).update(verdict_content(report))
        self.query_one("#check-findings", Static).update(
            findings_content([f.to_dict() for f in report.findings], empty="no findings: it fits module by module"))

    def _failed(self, exc: BaseException) -> None:
        from hub.tui.jobs import error_line

        self.query_one("#check-verdict", Static).update(Content.assemble((error_line(exc), "$text-error")))
        self.query_one("#check-findings", Static).update(
            findings_content([f.to_dict() for f in getattr(exc, "findings", None) or []], empty=""))
        self.app.report_error(exc)
