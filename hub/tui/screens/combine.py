"""`o`: combine the marked adapters. A form (weights, method and its parameters, name),
a live preview (resulting rank, exactness, compatibility findings) computed as a dry run,
then the real run as a task with a progress bar.

The preview runs PREVIEW_DELAY after the last edit of a field that changes it (weights,
method, parameters, the drop options; not the name); an edit cancels a preview still
running. Combine reuses the preview's result when the form has not changed since."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Footer, Input, Label, ProgressBar, Select, Static

from hub.tui.format import fmt_num
from hub.tui.jobs import Cancelled, error_line, run_in_thread
from hub.tui.widgets.details import findings_content

PREVIEW_DELAY = 0.3
DEFAULT_METHOD = "cat"
# CLI options that the service's advice names, as this form calls them
FORM_FIELDS = {"--drop-modules-to-save": "\"drop modules_to_save\"", "--drop-dora": "\"drop DoRA\"",
               "--name": "the Name field", "--rank": "the rank field"}


@dataclass(frozen=True)
class CombineForm:
    """What the form says, parsed; ``problem`` is the first thing that keeps it from running."""

    parents: list[tuple[str, float]]
    method: str
    params: dict
    name: str
    drop_dora: bool
    drop_mts: bool = False
    problem: str | None = None

    @property
    def preview_key(self) -> tuple:
        """What the preview depends on (the name is not part of it)."""
        return (tuple(self.parents), self.method, tuple(sorted(self.params.items())), self.drop_dora,
                self.drop_mts)


def default_name(names: list[str]) -> str:
    stem = "+".join(n.split("/")[-1] for n in names[:3])
    return (stem if len(names) <= 3 else f"{stem}+{len(names) - 3}more")[:120]


def preview_content(outcome) -> Content:
    s = outcome.summary
    rank = str(s["rank_min"]) if s["rank_min"] == s["rank_max"] else f"{s['rank_min']}–{s['rank_max']}"
    parts: list = [("resulting rank ", "bold"), (rank, "bold $text-accent"), f" over {s['modules']} modules · "]
    if s["exact"]:
        parts.append(("exact", "bold $text-success"))
        parts.append(" (the weighted sum of the deltas, no approximation)")
    else:
        parts.append(("approximate", "bold $text-warning"))
        if s.get("max_rel_error") is not None:
            parts.append(f" · max relative error {s['max_rel_error']:.2e}")
        if s.get("min_energy") is not None:
            parts.append(f" · min energy kept {s['min_energy']:.4f}")
    for note in s.get("notes") or []:
        parts += ["\n", ("note ", "$text-muted"), note]
    return Content.assemble(*parts)


class CombineScreen(Screen[str | None]):
    """Dismisses with the new adapter's name, or None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "combine", "Combine"),
    ]

    def __init__(self, hub, names: list[str]) -> None:
        super().__init__(classes="form-screen")
        self.hub = hub
        self.names = list(names)
        self.methods: dict = {}            # name -> hub.combine.Method, loaded in a worker (imports torch)
        self.preview = None                # last dry-run outcome
        self.findings: list = []
        self.busy = False
        self.job = None                   # the running combine (hub.tui.tasks.Task)
        self._preview_timer: Timer | None = None
        self._ticket = 0
        self._preview_stop = threading.Event()
        self._preview_key: tuple | None = None   # the inputs the shown (or running) preview is for
        self.previews_started = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="combine-form"):
            yield Label(f"Combine {len(self.names)} adapters into a new adapter", classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Parent", classes="form-label")
                yield Label("weight", classes="weight-head")
            for i, name in enumerate(self.names):
                with Horizontal(classes="form-row parent-row"):
                    yield Label(name, classes="form-label parent-name", markup=False)
                    yield Input("1.0", id=f"weight-{i}", type="number", compact=True, classes="weight")
                    yield Static("", id=f"parent-info-{i}", classes="parent-info", markup=False)
            with Horizontal(classes="form-row"):
                yield Label("Method", classes="form-label")
                yield Select([(DEFAULT_METHOD, DEFAULT_METHOD)], value=DEFAULT_METHOD, allow_blank=False,
                             id="method", compact=True)
            yield Static("loading methods …", id="method-help", classes="form-hint", markup=False)
            yield Vertical(id="params")
            with Horizontal(classes="form-row"):
                yield Label("Name", classes="form-label")
                yield Input(default_name(self.names), id="new-name", compact=True)
            yield Checkbox("drop DoRA magnitudes (combine only the LoRA part)", id="drop-dora", compact=True)
            yield Checkbox("drop modules_to_save (keep only the LoRA weights)", id="drop-mts", compact=True)
            yield Label("Preview", classes="section-title")
            yield Static("…", id="preview")
            yield Static("", id="preview-findings")
            yield ProgressBar(total=100, show_eta=False, id="combine-progress")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Combine", id="combine-go", variant="primary")
                yield Button("Cancel", id="combine-cancel")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#combine-progress").display = False
        self.query_one("#drop-dora").display = False
        self.query_one("#drop-mts").display = False
        self.query_one("#weight-0", Input).focus()
        hub, names = self.hub, self.names

        def load():
            from hub.combine import all_methods

            return {m.name: m for m in all_methods()}, [hub.get(n) for n in names]

        run_in_thread(self, load, self._loaded, group="combine-load")

    def _loaded(self, result) -> None:
        self.methods, records = result
        select = self.query_one("#method", Select)
        with self.prevent(Select.Changed):
            select.set_options([(name, name) for name in self.methods])
            select.value = DEFAULT_METHOD if DEFAULT_METHOD in self.methods else next(iter(self.methods))
        for i, rec in enumerate(records):
            flags = f" {','.join(rec.flags)}" if rec.flags else ""
            self.query_one(f"#parent-info-{i}", Static).update(
                f"r={rec.r} alpha={fmt_num(rec.lora_alpha)} {','.join(rec.target_modules)}{flags}")
        self.query_one("#drop-dora").display = any(r.use_dora for r in records)
        self.query_one("#drop-mts").display = any(r.modules_to_save for r in records)
        self._show_method()
        self.schedule_preview()

    # -- the form --------------------------------------------------------------------------

    def _show_method(self) -> None:
        method = self.methods.get(self.query_one("#method", Select).value)
        if method is None:
            return
        kind = "exact" if method.exact else "approximate"
        self.query_one("#method-help", Static).update(f"{kind}: {method.summary}")
        box = self.query_one("#params", Vertical)
        box.remove_children()
        rows = []
        for p in method.params:
            hint = "required" if p.required else (f"default {p.default}" if p.default is not None else "optional")
            if p.choices:
                field = Select([(c, c) for c in p.choices], value=p.default or p.choices[0], allow_blank=False,
                               id=f"param-{p.name}", compact=True)
            else:
                kind = {int: "integer", float: "number"}.get(p.type, "text")
                field = Input(placeholder=f"{hint} — {p.help}", id=f"param-{p.name}", type=kind, compact=True)
            field.tooltip = p.help
            rows.append(Horizontal(Label(p.name, classes="form-label"), field, classes="form-row param-row"))
        box.mount_all(rows)

    def read_form(self) -> CombineForm:
        parents, problem = [], None
        for i, name in enumerate(self.names):
            text = self.query_one(f"#weight-{i}", Input).value.strip()
            try:
                parents.append((name, float(text)))
            except ValueError:
                parents.append((name, 0.0))
                problem = problem or f"the weight of {name} is not a number"
        method_name = self.query_one("#method", Select).value
        method = self.methods.get(method_name)
        params = {}
        if method is not None:
            for p in method.params:
                field = self.query_one(f"#param-{p.name}")
                raw = "" if field.value is Select.NULL else str(field.value).strip()
                if not raw:
                    if p.required:
                        problem = problem or f"{method_name} needs {p.name} ({p.help})"
                    continue
                try:
                    params[p.name] = p.type(raw)
                except ValueError:
                    problem = problem or f"{p.name} must be {p.type.__name__}"
        name = self.query_one("#new-name", Input).value.strip()
        if not name:
            problem = problem or "give the new adapter a name"
        drop_dora = self.query_one("#drop-dora", Checkbox).value
        drop_mts = self.query_one("#drop-mts", Checkbox).value
        return CombineForm(parents, str(method_name), params, name, drop_dora, drop_mts, problem)

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _form_changed(self, event) -> None:
        field = getattr(event, "input", None)
        if field is not None and field.id == "new-name":
            return    # the name does not change the preview
        self.schedule_preview()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "method" and self.methods:
            self._show_method()
        if self.methods:
            self.schedule_preview()

    # -- preview (a dry run in a worker) --------------------------------------------------

    def schedule_preview(self) -> None:
        """An edit: the shown preview and findings are out of date at once; a new preview runs
        once typing pauses, if the inputs it depends on really changed."""
        if not self.methods or self.busy:
            return
        try:
            key = self.read_form().preview_key
        except Exception:  # noqa: BLE001 - param fields still mounting after a method switch
            key = None
        if key is not None and key == self._preview_key:
            return
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_stop.set()          # a preview of the old inputs stops at its next module
        self.preview = None
        self.findings = []
        self.query_one("#preview", Static).update(Content.assemble(("preview out of date …", "$text-muted")))
        self.query_one("#preview-findings", Static).update("")
        self._preview_timer = self.set_timer(PREVIEW_DELAY, self.run_preview)

    def run_preview(self) -> None:
        form = self.read_form()
        self._ticket += 1
        ticket = self._ticket
        if form.problem and "name" not in form.problem:
            self._preview_key = None
            self.preview = None
            self.query_one("#preview", Static).update(Content.assemble((form.problem, "$text-warning")))
            return
        self._preview_key = form.preview_key
        self.query_one("#preview", Static).update(Content.assemble(("computing preview …", "$text-muted")))
        hub = self.hub
        stop = self._preview_stop = threading.Event()
        self.previews_started += 1
        # a name nobody has: the preview does not depend on the Name field
        probe = f"tui-preview-{uuid.uuid4().hex[:12]}"

        def check_stop(*_args):
            if stop.is_set():
                raise Cancelled()

        def dry_run():
            rank = form.params.get("rank")
            report = hub.check_combination([n for n, _ in form.parents], form.method, rank=rank)
            try:
                outcome = hub.combine(form.parents, form.method, probe, form.params, drop_dora=form.drop_dora,
                                      drop_modules_to_save=form.drop_mts, dry_run=True, progress=check_stop)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - shown in the preview, like the CLI would print it
                return ticket, report, None, exc
            return ticket, report, outcome, None

        run_in_thread(self, dry_run, self._show_preview, lambda exc: None, group="combine-preview")

    def _show_preview(self, result) -> None:
        ticket, report, outcome, exc = result
        if ticket != self._ticket:
            return
        self.preview = outcome
        if outcome is not None:
            findings = [f.to_dict() for f in outcome.findings]
        else:
            findings = [f.to_dict() for f in (getattr(exc, "findings", None) or report.findings)]
        self.findings = findings
        if outcome is not None:
            self.query_one("#preview", Static).update(preview_content(outcome))
        else:
            self._preview_key = None    # a failed preview is tried again on the next edit
            self.query_one("#preview", Static).update(
                Content.assemble((error_line(exc, FORM_FIELDS), "$text-error")))
        self.query_one("#preview-findings", Static).update(
            findings_content(findings, empty="compatible: no findings"))

    # -- running --------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "combine-go":
            self.action_combine()
        elif event.button.id == "combine-cancel":
            self.action_cancel()

    def action_cancel(self) -> None:
        if self.busy and self.job is not None:
            self.job.cancel()   # stops at the next progress report; nothing is registered before the end
            return
        self._preview_stop.set()
        self.dismiss(None)

    def action_combine(self) -> None:
        if self.busy or not self.methods:
            return
        form = self.read_form()
        if form.problem:
            self.notify(form.problem, severity="warning")
            return
        self.busy = True
        bar = self.query_one("#combine-progress", ProgressBar)
        bar.display = True
        bar.update(total=100, progress=0)
        self.query_one("#combine-go", Button).disabled = True
        hub = self.hub
        reuse = self.preview if form.preview_key == self._preview_key else None

        def update(task):
            if self.is_attached:
                bar.update(total=max(task.total, 1), progress=task.done)

        def run(progress):
            return hub.combine(form.parents, form.method, form.name, form.params, drop_dora=form.drop_dora,
                               drop_modules_to_save=form.drop_mts, progress=progress, reuse=reuse)

        self.job = self.app.tasks.start(f"combine {form.name}", run, self._combined, self._failed, update,
                                         notify=False)

    def _finish(self) -> None:
        self.busy = False
        self.job = None
        if self.is_attached:
            self.query_one("#combine-progress").display = False
            self.query_one("#combine-go", Button).disabled = False

    def _combined(self, outcome) -> None:
        self._finish()
        self.notify(outcome.message, markup=False)
        if self.is_attached:
            self.dismiss(outcome.record.name)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, Cancelled):
            self.notify("combine cancelled; nothing was registered", severity="warning")
            return
        self.notify(error_line(exc, FORM_FIELDS), severity="error", timeout=10, markup=False)
