"""Registry changes from the main screen, on one adapter or on every marked one: tag,
rename, delete (to the trash), export, copy, undo, add/scan, push, remote check.

Each asks what it needs in a dialog, runs the service call off the UI thread (as a task
when it can take a while) and refreshes the table. Undo keeps the inverse of the last
tag, rename or delete (deletes come back from the trash)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.tui.format import human_size, inert
from hub.tui.jobs import run_in_thread
from hub.tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen


@dataclass
class Undo:
    label: str
    kind: str            # tag | rename | delete
    data: object


def parse_tag_edit(text: str) -> tuple[list[str], list[str]]:
    """'a b -c' -> add [a, b], remove [c]."""
    add, remove = [], []
    for word in text.replace(",", " ").split():
        (remove if word.startswith("-") else add).append(word.lstrip("-+"))
    return [w for w in add if w], [w for w in remove if w]


def _who(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{len(names)} adapters"


def tag(screen, names: list[str]) -> None:
    if not names:
        return
    hub = screen.hub
    row = screen.table.current
    hint = f" (now: {', '.join(row.tags) or 'none'})" if len(names) == 1 and row and row.name == names[0] else ""

    def validate(text: str) -> None:
        from hub.names import check_tag

        for t in parse_tag_edit(text)[0]:
            check_tag(t)

    def apply():
        add, remove = parse_tag_edit(text_box[0])
        before = {n: set(hub.get(n).tags) for n in names}
        records = [hub.tag(n, add=add, remove=remove) for n in names]
        # the inverse of what really changed, per adapter
        inverse = {r.name: (sorted(before[r.name] - set(r.tags)), sorted(set(r.tags) - before[r.name]))
                   for r in records}
        return records, inverse

    def applied(result) -> None:
        records, inverse = result
        screen.app.undo = Undo(f"tags of {_who(names)}", "tag", inverse)
        if len(records) == 1:
            screen.notify(f"{records[0].name}: {', '.join(records[0].tags) or '(no tags)'}", markup=False)
        else:
            screen.notify(f"tagged {len(records)} adapters", markup=False)
        screen.refresh_after(changed=tuple(names))

    text_box = [""]

    def done(text: str | None) -> None:
        if text:
            text_box[0] = text
            run_in_thread(screen, apply, applied)

    screen.app.push_screen(PromptScreen(f"Tag {_who(names)}", f"Tags to add, -tag to remove{hint}",
                                        placeholder="e.g. prod -draft", validate=validate, ok="Apply"), done)


def rename(screen, names: list[str]) -> None:
    if not names:
        return
    name, hub = names[0], screen.hub

    def validate(text: str) -> None:
        from hub.names import check_name

        check_name(text)

    def renamed(rec) -> None:
        screen.table.forget(name, rec.name)
        screen.app.undo = Undo(f"rename of {name}", "rename", (rec.name, name))
        screen.notify(f"renamed {name} -> {rec.name}", markup=False)
        screen.refresh_after(keep=rec.name, changed=(name, rec.name))

    def done(new: str | None) -> None:
        if new and new != name:
            run_in_thread(screen, lambda: hub.rename(name, new), renamed)

    screen.app.push_screen(PromptScreen(f"Rename {name}", "New name", value=name, validate=validate,
                                        ok="Rename"), done)


def delete_body(names: list[str], dependents: dict[str, list[tuple[str, str]]], days: float) -> str:
    """What the confirmation says: which adapters, and what was made from them."""
    lines = [f"Move {len(names)} adapter{'s' if len(names) != 1 else ''} to the trash: {', '.join(names)}"]
    for name in names:
        deps = dependents.get(name) or []
        if deps:
            made = ", ".join(f"{kind} {child}" for kind, child in deps)
            lines.append(f"  {name} is a parent of: {made} (their lineage will show it as removed)")
    if not any(dependents.values()):
        lines.append("Nothing registered was made from them.")
    lines.append(f"Kept in the trash for {days:g} days: z undoes, `hub trash restore NAME` brings one back.")
    return "\n".join(inert(line) for line in lines)


def delete(screen, names: list[str]) -> None:
    if not names:
        return
    hub = screen.hub

    def removed(plans) -> None:
        for name in names:
            screen.table.forget(name)
        screen.app.undo = Undo(f"delete of {_who(names)}", "delete", [t for p in plans for t in p.trash_ids])
        screen.notify(f"moved {_who(names)} to the trash (z undoes)", markup=False)
        screen.refresh_after(changed=tuple(names))

    def confirmed(yes: bool | None) -> None:
        if yes:
            run_in_thread(screen, lambda: [hub.remove(n) for n in names], removed)

    def ask(info) -> None:
        dependents, days = info
        screen.app.push_screen(ConfirmScreen(f"Delete {_who(names)}", delete_body(names, dependents, days),
                                             yes="Delete"), confirmed)

    run_in_thread(screen, lambda: (hub.dependents_of(names), hub.trash_retention_days()), ask)


def export(screen, names: list[str]) -> None:
    if not names:
        return
    hub = screen.hub
    single = len(names) == 1
    default = str(Path.cwd() / names[0].replace("/", "-")) if single else str(Path.cwd())
    label = "Folder to write the PEFT adapter to" if single else "Folder to write one PEFT folder per adapter into"

    def done(answer) -> None:
        if not answer:
            return
        folder, overwrite = answer
        outs = [(n, Path(folder) if single else Path(folder) / n.replace("/", "-")) for n in names]

        def run(progress):
            written = []
            for i, (n, out) in enumerate(outs):
                progress(i, len(outs), n)
                written.append(str(hub.export(n, out, overwrite=overwrite)))
            progress(len(outs), len(outs), "")
            return {"message": f"exported {_who(names)} to {written[0] if single else folder}"}

        screen.app.tasks.start(f"export {_who(names)}", run)

    screen.app.push_screen(PromptScreen(f"Export {_who(names)}", label, value=default, ok="Export",
                                        checkbox="Overwrite an existing folder"), done)


def copy(screen, names: list[str]) -> None:
    if not names:
        return
    hub, name = screen.hub, names[0]

    def chosen(field: str | None) -> None:
        if not field:
            return

        def value():
            rec = hub.get(name)
            if field == "name":
                return rec.name
            if field == "sha256":
                return rec.sha256
            return str(rec.path if rec.storage == "link" else hub.adapter_dir(name))

        def copied(text: str) -> None:
            screen.app.copy_to_clipboard(text)
            screen.notify(f"copied {field}: {text}", markup=False)

        run_in_thread(screen, value, copied)

    screen.app.push_screen(ChoiceScreen(f"Copy from {name}", [("name", "n", "name"), ("sha256", "s", "sha256"),
                                                               ("path", "p", "path of its PEFT folder")]), chosen)


def undo(screen) -> None:
    step = getattr(screen.app, "undo", None)
    if step is None:
        screen.notify("nothing to undo", severity="warning")
        return
    hub = screen.hub

    def run():
        if step.kind == "tag":
            for name, (add, remove) in step.data.items():
                hub.tag(name, add=add, remove=remove)
            return list(step.data)
        if step.kind == "rename":
            new, old = step.data
            hub.rename(new, old)
            return [new, old]
        return [hub.trash_restore(trash_id).name for trash_id in step.data]

    def undone(changed) -> None:
        screen.app.undo = None
        screen.notify(f"undid the {step.label}", markup=False)
        screen.refresh_after(keep=changed[-1] if changed else None, changed=tuple(changed))

    run_in_thread(screen, run, undone)


def add(screen) -> None:
    def done(answer) -> None:
        if not answer:
            return
        folder, scan = answer
        path = Path(folder).expanduser()
        if scan or not (path / "adapter_config.json").exists():
            def scanned(r: dict) -> None:
                added = tuple(r.get("added") or ())
                screen.refresh_after(keep=added[0] if added else None, changed=added)   # every one into the index

            screen.app.tasks.start_child(f"scan {folder}", "scan", {"folder": str(path)}, on_success=scanned)
        else:
            hub = screen.hub
            screen.app.tasks.start(f"add {folder}", lambda _p: {"name": hub.add(path).record.name,
                                                               "message": f"added {path.name}"},
                                   on_success=lambda r: screen.show_adapter(r["name"]))

    screen.app.push_screen(PromptScreen("Add adapters", "An adapter folder, or a folder to scan for adapters",
                                        placeholder="~/loras/my-adapter", ok="Add",
                                        checkbox="Scan every adapter under it"), done)


def push(screen, names: list[str]) -> None:
    if not names:
        return
    name = names[0]

    def done(answer) -> None:
        if not answer or not answer[0]:
            return
        repo, base_model = answer
        screen.app.tasks.start_child(f"push {name} to {repo}", "push",
                                     {"name": name, "repo_id": repo, "base_model": base_model or None},
                                     on_success=lambda _r: screen.refresh_after(changed=(name,)))

    screen.app.push_screen(PromptScreen(f"Push {name}", "Hugging Face Hub repo id", placeholder="user/my-lora",
                                        ok="Push", second=("Base model id for the card (--base-model)",
                                                           "optional, e.g. meta-llama/Llama-3.2-1B")), done)


def check_remote(screen, name: str) -> None:
    hub = screen.hub

    def checked(states) -> None:
        if not states:
            screen.notify(f"{name} has no remote: push it with P", severity="warning", markup=False)
            return
        summary = ", ".join(f"{s.repo_id}@{s.revision}: {s.state}" for s in states)
        screen.notify(inert(f"{name}: {summary}"), markup=False)
        screen.details.show_tab(6)
        screen.load_details(name)

    screen.notify(f"asking the Hub about {name} …", markup=False)
    run_in_thread(screen, lambda: hub.remote_status(name, check=True), checked, group="remote")


__all__ = ["Undo", "add", "check_remote", "copy", "delete", "delete_body", "export", "human_size",
           "parse_tag_edit", "push", "rename", "tag", "undo"]
