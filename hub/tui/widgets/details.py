"""The details pane: everything `hub show` prints, in tabs, for the row under the cursor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, DataTable, Static, TabbedContent, TabPane, Tree

from hub.records import AdapterRecord
from hub.tui.format import FLAG_LABELS, flags_text, fmt_num, human_size, inert

SEVERITY_STYLE = {"error": "bold $error", "warning": "bold $warning", "info": "$text-muted"}
LINEAGE_DEPTH = 4


@dataclass
class DetailsView:
    """A record plus what the lineage tree needs, loaded together in a worker."""

    record: AdapterRecord
    children: list[dict] = field(default_factory=list)
    # parent name -> that parent's own lineage (only parents still registered)
    ancestry: dict[str, list[dict]] = field(default_factory=dict)


def load_details(hub, name: str) -> DetailsView:
    record = hub.get(name)
    ancestry: dict[str, list[dict]] = {}
    frontier = [p["name"] for p in record.lineage if p["type"] == "adapter" and p["present"]]
    for _ in range(LINEAGE_DEPTH):
        nxt = []
        for parent in frontier:
            if parent in ancestry:
                continue
            try:
                ancestry[parent] = hub.get(parent).lineage
            except Exception:  # noqa: BLE001 - a parent removed meanwhile is shown as a leaf
                ancestry[parent] = []
            nxt += [p["name"] for p in ancestry[parent] if p["type"] == "adapter" and p["present"]]
        frontier = nxt
    return DetailsView(record, hub.children_of(name), ancestry)


def _lines(pairs: Iterable[tuple[str, str]]) -> Content:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    parts: list = []
    for key, value in pairs:
        parts += [(key.ljust(width), "bold $text-secondary"), "  ", inert(value), "\n"]
    return Content.assemble(*parts[:-1]) if parts else Content("")


def source_text(rec: AdapterRecord) -> str:
    src = rec.source
    if src.get("repo"):
        commit = (src.get("commit") or "")[:12]
        return f"{src['repo']}@{src.get('revision') or 'main'}" + (f" ({commit})" if commit else "")
    return src.get("path") or src.get("kind") or "-"


def overview(rec: AdapterRecord) -> Content:
    scaling = f"scaling {rec.scaling:g}" + (", rsLoRA" if rec.use_rslora else "")
    return _lines([
        ("name", rec.name),
        ("base_model", rec.base_model or "-"),
        ("registered base", rec.base or "-"),
        ("r / alpha", f"{rec.r} / {fmt_num(rec.lora_alpha)}  ({scaling})"),
        ("targets", ", ".join(rec.target_modules) or "-"),
        ("flags", ", ".join(f"{FLAG_LABELS.get(f, f)} ({f})" for f in rec.flags) or "-"),
        ("modules_to_save", ", ".join(rec.modules_to_save) or "-"),
        ("layers / modules", f"{rec.num_layers} / {rec.num_modules}"),
        ("parameters", f"{rec.param_count:,}"),
        ("dtype", rec.dtype or "-"),
        ("size", human_size(rec.size_bytes)),
        ("sha256", rec.sha256),
        ("tags", ", ".join(rec.tags) or "-"),
        ("storage", rec.storage + (f" ({rec.path})" if rec.path else "")),
        ("source", source_text(rec)),
        ("created", rec.created_at[:19].replace("T", " ")),
    ] + ([("recipe", json.dumps(rec.recipe, sort_keys=True))] if rec.recipe else []))


def findings_content(findings: list[dict], empty: str = "no findings") -> Content:
    if not findings:
        return Content.assemble((empty, "$text-success"))
    parts: list = []
    for f in findings:
        sev = f["severity"]
        parts += [(f"{inert(sev):<7}", SEVERITY_STYLE.get(sev, "")), " ", (inert(f["code"]), "bold")]
        if f.get("module"):
            parts += ["  ", (inert(f["module"]), "$text-muted")]
        parts += ["\n        ", inert(f["message"]), "\n"]
    return Content.assemble(*parts[:-1])


def remote_content(rec: AdapterRecord) -> Content:
    parts: list = []
    src = rec.source
    if src.get("repo"):
        parts += [("pulled from ", "bold"), inert(source_text(rec)), "\n"]
    if not rec.remotes:
        parts += [("no remote linked", "$text-muted"),
                  "\npush with `hub push NAME REPO_ID`" if not src.get("repo") else ""]
        return Content.assemble(*parts)
    for r in rec.remotes:
        ours, theirs = r.get("commit"), r.get("remote_commit")
        if theirs is None and r.get("checked_at"):
            state, style = "gone from the Hub", "$text-error"
        elif theirs is None:
            state, style = "not checked yet (press u)", "$text-muted"
        elif ours == theirs:
            state, style = "up to date", "$text-success"
        else:
            state, style = f"remote moved to {theirs[:12]}", "$text-warning"
        parts += [(f"{r['direction']:<5}", "bold"), inert(f" {r['repo_id']}@{r['revision']}  "),
                  inert((ours or "")[:12]), "  ", (inert(state), style)]
        if r.get("checked_at"):
            parts += [("  checked " + r["checked_at"][:19].replace("T", " "), "$text-muted")]
        parts.append("\n")
    return Content.assemble(*parts[:-1])


class DetailsPane(Vertical):
    """Tabs for one adapter: Overview, Config, Modules, Files, Findings, Lineage, Remote."""

    class CheckRemote(Message):
        """The user asked whether the remotes moved on (the screen asks the Hub)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.view: DetailsView | None = None
        self._filled: set[str] = set()     # tabs that show self.view already
        self._tabs = "absent"              # -> "mounting" -> "ready": see build()
        self._pending: DetailsView | None = None   # asked for before the tabs were ready
        self._pending_tab: int | None = None
        self._pending_focus = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "d-remote-check":
            event.stop()
            self.post_message(self.CheckRemote())

    @property
    def current_name(self) -> str | None:
        return self.view.record.name if self.view else None

    def compose(self) -> ComposeResult:
        yield Static("select an adapter", id="details-title", markup=False)

    # The tabs are mounted after the first paint, when first needed: composing and styling
    # their ~50 widgets took about 0.2 s of a fresh process's 0.4 s to the first rows painted.
    @property
    def ready(self) -> bool:
        return self._tabs == "ready"

    def build(self) -> None:
        """Mount the tabs (once); what was asked of them meanwhile is done once they are in."""
        if self._tabs == "absent":
            self._tabs = "mounting"
            self.call_later(self._mount_tabs)

    @staticmethod
    def _tabbed() -> TabbedContent:
        tabs = TabbedContent(id="details-tabs")
        for pane in (
            TabPane("Overview", VerticalScroll(Static(id="d-overview")), id="tab-overview"),
            TabPane("Modules", DataTable(id="d-modules", cursor_type="row", zebra_stripes=True), id="tab-modules"),
            TabPane("Files", DataTable(id="d-files", cursor_type="row"), id="tab-files"),
            TabPane("Findings", VerticalScroll(Static(id="d-findings")), id="tab-findings"),
            TabPane("Lineage", Tree("lineage", id="d-lineage"), id="tab-lineage"),
            TabPane("Remote", VerticalScroll(
                Static(id="d-remote"), Button("Ask the Hub now (u)", id="d-remote-check", compact=True)),
                id="tab-remote"),
            TabPane("Config", VerticalScroll(Static(id="d-config", markup=False)), id="tab-config"),
        ):
            tabs.compose_add_child(pane)    # what `with TabPane(...)` in compose() does
        return tabs

    async def _mount_tabs(self) -> None:
        await self.mount(self._tabbed())
        self.query_one("#d-modules", DataTable).add_columns("Module", "R", "Alpha", "In", "Out", "Kind")
        self.query_one("#d-files", DataTable).add_columns("File", "Size", "SHA-256")
        self._tabs = "ready"
        view, self._pending = self._pending, None
        tab, self._pending_tab = self._pending_tab, None
        focus, self._pending_focus = self._pending_focus, False
        if view is not None:
            self.show(view)
        if tab is not None:
            self.show_tab(tab)
        if focus:
            self.focus_tabs()

    TAB_IDS = ("tab-overview", "tab-modules", "tab-files", "tab-findings", "tab-lineage", "tab-remote", "tab-config")

    def show_tab(self, index: int) -> None:
        """1-based, as the number keys."""
        if not self.ready:
            self._pending_tab = index
            self.build()
        elif 1 <= index <= len(self.TAB_IDS):
            self.query_one("#details-tabs", TabbedContent).active = self.TAB_IDS[index - 1]

    def focus_tabs(self) -> None:
        """Focus the tab strip: left/right switch tabs, tab goes inside."""
        if not self.ready:
            self._pending_focus = True
            self.build()
        else:
            self.query_one("#details-tabs Tabs").focus()

    def title(self, message: str) -> None:
        """Say ``message`` above the tabs (a repaint: the title is one line)."""
        self.query_one("#details-title", Static).update(message, layout=False)

    def clear(self) -> None:
        """Empty the tabs (the title stays: see title())."""
        self._pending = None
        if not self.ready:
            self.build()    # empty tabs are still tabs: an empty registry shows them too
            return
        if self.view is None:
            return      # empty already: emptying the tabs again would lay out the screen for nothing
        self.view = None
        self._filled = set()
        for sid in ("#d-overview", "#d-findings", "#d-remote", "#d-config"):
            self.query_one(sid, Static).update("")
        self.query_one("#d-modules", DataTable).clear()
        self.query_one("#d-files", DataTable).clear()
        self.query_one("#d-lineage", Tree).clear()

    def show(self, view: DetailsView) -> None:
        if not self.ready:
            self._pending = view
            self.build()
            return
        self.view = view
        rec = view.record
        flags = f" · {flags_text(rec.flags)}" if rec.flags else ""
        self.query_one("#details-title", Static).update(
            inert(f"{rec.name}  r={rec.r} alpha={fmt_num(rec.lora_alpha)} · {len(rec.modules)} modules{flags}"),
            layout=False)
        self.query_one("#d-overview", Static).update(overview(rec))
        self.query_one("#d-config", Static).update(json.dumps(rec.config, indent=2, sort_keys=True))
        self.query_one("#d-findings", Static).update(findings_content(rec.findings))
        self.query_one("#d-remote", Static).update(remote_content(rec))
        self.query_one("#d-remote-check").display = bool(rec.remotes)
        errors = sum(f["severity"] == "error" for f in rec.findings)
        warnings = sum(f["severity"] == "warning" for f in rec.findings)
        label = "Findings" + (f" ({len(rec.findings)})" if rec.findings else "")
        tabs = self.query_one("#details-tabs", TabbedContent)
        tabs.get_tab("tab-findings").label = label
        tabs.get_tab("tab-findings").set_class(bool(errors), "-has-errors")
        tabs.get_tab("tab-findings").set_class(bool(warnings) and not errors, "-has-warnings")

        self._filled = set()
        self._fill_shown_tab()

    # The tables and the tree are filled when their tab is first shown: a DataTable measures
    # every cell of every new row when idle, which took tens of ms per record while typing
    # moved the cursor through records whose Modules tab nobody looked at.
    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self._fill_shown_tab()

    def _fill_shown_tab(self) -> None:
        view = self.view
        tab = self.query_one("#details-tabs", TabbedContent).active
        if view is None or tab in self._filled:
            return
        self._filled.add(tab)
        rec = view.record
        if tab == "tab-modules":
            modules = self.query_one("#d-modules", DataTable)
            modules.clear()
            modules.add_rows(
                (Text(inert(path)), m["r"], fmt_num(m["alpha"]), m["in_features"], m["out_features"],
                 Text(inert(m.get("kind", "linear")) + (" +dora" if m.get("dora") else "")))
                for path, m in rec.modules.items())
        elif tab == "tab-files":
            files = self.query_one("#d-files", DataTable)
            files.clear()
            files.add_rows((Text(inert(f["name"])), human_size(f["size"]), f["sha256"]) for f in rec.files)
        elif tab == "tab-lineage":
            self._fill_lineage(view)

    def _fill_lineage(self, view: DetailsView) -> None:
        tree = self.query_one("#d-lineage", Tree)
        tree.clear()
        rec = view.record
        tree.root.set_label(Text.assemble((inert(rec.name), "bold")))
        made = tree.root.add("made from", expand=True)
        if not rec.lineage:
            made.add_leaf(Text.assemble(("registered directly (no parents)", "dim")))

        def add_parents(node, parents, depth, seen):
            for p in parents:
                label = [(inert(p["name"]), "bold" if p["type"] == "adapter" else "")]
                if p["type"] != "adapter":
                    label.insert(0, (f"{p['type']} ", "dim"))
                if p.get("weight") is not None:
                    label.append((f"  ×{fmt_num(p['weight'])}", "italic"))
                if not p["present"]:
                    label.append(("  (removed)", "dim italic"))
                grand = view.ancestry.get(p["name"], []) if p["type"] == "adapter" else []
                if grand and depth < LINEAGE_DEPTH and p["name"] not in seen:
                    child = node.add(Text.assemble(*label), expand=True)
                    add_parents(child, grand, depth + 1, seen | {p["name"]})
                else:
                    node.add_leaf(Text.assemble(*label))

        add_parents(made, rec.lineage, 1, {rec.name})
        used = tree.root.add("used by", expand=True)
        if not view.children:
            used.add_leaf(Text.assemble(("no adapter made from this one", "dim")))
        for c in view.children:
            weight = f"  ×{fmt_num(c['weight'])}" if c.get("weight") is not None else ""
            used.add_leaf(Text.assemble((inert(c["name"]), "bold"), (weight, "italic")))
        tree.root.expand()
