"""`m`: merge adapters into a base model. The plan is shown first (tensors touched, bytes,
peak memory, findings); then the merge runs as a task with a progress bar and can be
cancelled (the output folder is written atomically, so a cancelled merge leaves nothing
behind). A plan is for the inputs it was made from: any edit, and the merge itself, use it up."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Footer, Input, Label, ProgressBar, Select, Static

from hub.tui.format import human_size
from hub.tui.jobs import Cancelled, error_line, run_in_thread
from hub.tui.widgets.details import findings_content

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("keep", "bf16", "fp16", "fp32")
# CLI options that the service's advice names, as this form calls them
FORM_FIELDS = {"--overwrite": "\"overwrite\"", "--name": "the Name field", "--out": "the Output field",
               "--base": "the Base field", "--device": "the Device field", "--dtype": "the dtype field"}


def plan_content(plan: dict) -> Content:
    """``plan``: the service's dry-run report (MergePlan.describe() plus out and name)."""
    parts: list = [("plan ", "bold"),
                   f"{plan.get('tensors_touched', '?')} of {plan.get('tensors_total', '?')} tensors change · ",
                   f"read {human_size(plan.get('bytes_read'))} · write {human_size(plan.get('bytes_written'))}"]
    if plan.get("peak_memory_estimate"):
        parts.append(f" · peak memory ≈ {human_size(plan['peak_memory_estimate'])}")
    parts.append(f"\n{len(plan.get('shards') or [])} shard(s), dtype {plan.get('dtype', 'keep')}, "
                 f"device {plan.get('device', 'auto')}")
    if plan.get("name"):
        parts.append(f", recorded as model {plan['name']}")
    if plan.get("untie_embeddings"):
        parts += ["\n", ("note ", "$text-muted"), "tied embeddings are written untied (the adapter changes one side)"]
    return Content.assemble(*parts)


class MergeScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel / close"),
        Binding("ctrl+s", "merge", "Plan, then merge"),
    ]

    def __init__(self, hub, names: list[str]) -> None:
        super().__init__(classes="form-screen")
        self.hub = hub
        self.names = list(names)
        self.plan: dict | None = None
        self.busy = False
        self.result = None
        self.job = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="merge-form"):
            yield Label(f"Merge {', '.join(self.names)} into a base model", classes="dialog-title", markup=False)
            for i, name in enumerate(self.names):
                with Horizontal(classes="form-row parent-row"):
                    yield Label(name, classes="form-label parent-name", markup=False)
                    yield Input("1.0", id=f"merge-weight-{i}", type="number", compact=True, classes="weight")
            with Horizontal(classes="form-row"):
                yield Label("Base", classes="form-label")
                yield Input(placeholder="base model folder or registered base", id="merge-base", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Output", classes="form-label")
                yield Input(placeholder="folder to write the merged model to", id="merge-out", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Name", classes="form-label")
                yield Input(placeholder="model name in the registry (default: the output folder's name)",
                            id="merge-name", compact=True)
            yield Checkbox("overwrite the output folder if it exists (replaced atomically)", id="merge-overwrite",
                           compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Device", classes="form-label")
                yield Select([(d, d) for d in DEVICES], value="auto", allow_blank=False, id="merge-device",
                             compact=True)
                yield Label("dtype", classes="form-label inline-label")
                yield Select([(d, d) for d in DTYPES], value="keep", allow_blank=False, id="merge-dtype",
                             compact=True)
            yield Static(Content.assemble(("Plan (or ctrl+s) shows what the merge will do; "
                                           "Merge (ctrl+s again) writes it", "$text-muted")), id="merge-plan")
            yield Static("", id="merge-findings")
            yield ProgressBar(total=100, show_eta=True, id="merge-progress")
            yield Static("", id="merge-status", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Plan", id="merge-plan-go")
                yield Button("Merge", id="merge-go", variant="primary", disabled=True)
                yield Button("Close", id="merge-close")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#merge-progress").display = False
        self.query_one("#merge-base", Input).focus()
        hub, first = self.hub, self.names[0]

        def guess():
            bases = [b.name for b in hub.list_bases()] if hasattr(hub, "list_bases") else []
            rec = hub.get(first)
            base = rec.base or (rec.base_model if rec.base_model and Path(rec.base_model).is_dir() else None)
            return bases, base

        run_in_thread(self, guess, self._prefill)

    def _prefill(self, result) -> None:
        bases, base = result
        field = self.query_one("#merge-base", Input)
        field.suggester = SuggestFromList(bases, case_sensitive=False)
        if base and not field.value:
            field.value = base
        out = self.query_one("#merge-out", Input)
        if not out.value:
            out.value = str(Path.cwd() / f"merged-{self.names[0].replace('/', '-')}")

    def _inputs(self) -> dict | None:
        base = self.query_one("#merge-base", Input).value.strip()
        out = self.query_one("#merge-out", Input).value.strip()
        adapters = []
        for i, name in enumerate(self.names):
            try:
                adapters.append((name, float(self.query_one(f"#merge-weight-{i}", Input).value)))
            except ValueError:
                self.notify(f"the weight of {name} is not a number", severity="warning")
                return None
        if not base or not out:
            self.notify("give a base model and an output folder", severity="warning")
            return None
        return {"base": base, "adapters": adapters, "out": out,
                "device": self.query_one("#merge-device", Select).value,
                "dtype": self.query_one("#merge-dtype", Select).value,
                "name": self.query_one("#merge-name", Input).value.strip() or None,
                "overwrite": self.query_one("#merge-overwrite", Checkbox).value}

    def _use_up_plan(self) -> None:
        self.plan = None
        self.query_one("#merge-go", Button).disabled = True

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._use_up_plan()     # a plan is for the inputs it was made from

    def on_select_changed(self, _event: Select.Changed) -> None:
        self._use_up_plan()

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        self._use_up_plan()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"merge-plan-go": self.action_plan, "merge-go": self.action_merge,
         "merge-close": self.action_cancel}[event.button.id]()

    def action_plan(self) -> None:
        args = self._inputs()
        if args is None:
            return
        self.query_one("#merge-plan", Static).update(Content.assemble(("planning …", "$text-muted")))
        self.query_one("#merge-findings", Static).update("")
        hub = self.hub
        run_in_thread(self, lambda: hub.merge(args["base"], args["adapters"], args["out"], device=args["device"],
                                              dtype=args["dtype"], name=args["name"], overwrite=args["overwrite"],
                                              dry_run=True),
                      self._planned, self._plan_failed, group="merge-plan", exclusive=True)

    def _planned(self, outcome) -> None:
        self.plan = outcome.plan
        self.query_one("#merge-plan", Static).update(plan_content(self.plan))
        self.query_one("#merge-findings", Static).update(
            findings_content(self.plan.get("findings") or [], empty="no findings"))
        self.query_one("#merge-go", Button).disabled = False
        self.query_one("#merge-go", Button).focus()

    def _plan_failed(self, exc: BaseException) -> None:
        line = error_line(exc, FORM_FIELDS)
        self.query_one("#merge-plan", Static).update(Content.assemble((line, "$text-error")))
        self.query_one("#merge-findings", Static).update(
            findings_content([f.to_dict() for f in getattr(exc, "findings", [])], empty=""))
        self.notify(line, severity="error", timeout=10, markup=False)

    def action_merge(self) -> None:
        if self.busy:
            return
        if self.plan is None:
            # the first ctrl+s shows the plan; the merge runs only once it has been seen
            self.action_plan()
            return
        args = self._inputs()
        if args is None:
            return
        self.busy = True
        bar = self.query_one("#merge-progress", ProgressBar)
        bar.display = True
        bar.update(total=100, progress=0)
        for bid in ("#merge-go", "#merge-plan-go"):
            self.query_one(bid, Button).disabled = True
        self.query_one("#merge-close", Button).label = "Cancel"
        self.query_one("#merge-status", Static).update("merging …")
        hub = self.hub
        self._use_up_plan()        # the next ctrl+s plans again; it never re-runs this merge

        def update(task):
            if not self.is_attached:
                return
            bar.update(total=max(task.total, 1), progress=task.done)
            self.query_one("#merge-status", Static).update(
                f"merging … {human_size(task.done)} of {human_size(task.total)}" + (f"  {task.item}" if task.item else ""))

        def run(progress):
            return hub.merge(args["base"], args["adapters"], args["out"], device=args["device"], dtype=args["dtype"],
                             name=args["name"], overwrite=args["overwrite"], progress=progress)

        self.job = self.app.tasks.start(f"merge into {Path(args['out']).name}", run, self._merged, self._failed,
                                         update, notify=False)

    def _finish(self) -> None:
        self.busy = False
        self.job = None
        if not self.is_attached:
            return
        self.query_one("#merge-progress").display = False
        self.query_one("#merge-plan-go", Button).disabled = False
        self.query_one("#merge-go", Button).disabled = self.plan is None
        self.query_one("#merge-close", Button).label = "Close"

    def _merged(self, outcome) -> None:
        self._finish()
        self.result = outcome
        name = f" (recorded as model {outcome.record.name})" if outcome.record else ""
        self.notify(f"merged {len(self.names)} adapter(s) into {outcome.out_dir}", markup=False)
        if self.is_attached:
            self.query_one("#merge-status", Static).update(f"merged into {outcome.out_dir}{name}")

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, Cancelled):
            self.notify("merge cancelled; nothing was written", severity="warning")
            if self.is_attached:
                self.query_one("#merge-status", Static).update("cancelled: the output folder was not written")
            return
        line = error_line(exc, FORM_FIELDS)
        self.notify(line, severity="error", timeout=10, markup=False)
        if self.is_attached:
            self.query_one("#merge-status", Static).update(line)

    def action_cancel(self) -> None:
        if self.busy and self.job is not None:
            # the merge stops at its next progress report and removes its partial output;
            # _failed (Cancelled) or _merged says which happened
            self.job.cancel()
            self.query_one("#merge-status", Static).update("cancelling …")
            return
        self.dismiss(None)
