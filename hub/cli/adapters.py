"""Adapter commands: add, scan, list, show, rm, tag, rename, export, verify."""

from __future__ import annotations

import sys

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, fmt_num, human_size, table
from hub.cli._progress import announce, progress_bar
from hub.reader import FLAG_MEANINGS, FLAGS

SORTS = ("name", "r", "alpha", "size", "created", "base", "layers", "params")


def ref_label(rec) -> str:
    """NAME for version 1 (what a one-version registry always shows), else NAME@N."""
    return rec.name if rec.version == 1 else f"{rec.name}@{rec.version}"


def record_json(rec) -> dict:
    d = rec.to_dict()
    d["flags"] = rec.flags
    return d


@cli.command()
@click.argument("path", type=click.Path(path_type=str))
@click.option("--name", help="Registry name (default: the folder's name).")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--link", is_flag=True, help="Register the folder in place instead of copying it into the store.")
@click.option("--allow-nonfinite", is_flag=True, help="Register even if tensors hold NaN/Inf (refused by default).")
@click.option("--base", metavar="BASE",
              help="For a file that needs its base to be read (FILE.gguf): the registered base or model folder it "
                   "was made for.")
@click.option("--new-version", is_flag=True, help="Add the folder as the next version of --name NAME (NAME@2, ...).")
@json_option
@pass_state
def add(state, path, name, tags, link, allow_nonfinite, base, new_version, as_json):
    """Register one PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).

    The folder is validated (config schema, safetensors header, config vs tensors)
    and copied into the content-addressed store; identical content is stored once.
    A taken name is refused unless --new-version adds the folder as its next version.
    A GGUF LoRA file (llama.cpp) is converted back into a PEFT adapter with
    `hub add FILE.gguf --base BASE`; its lineage records the file's hash.
    """
    from pathlib import Path

    if Path(path).expanduser().is_dir() or not Path(path).expanduser().exists():
        if base:
            raise click.UsageError("--base is for files that are converted (FILE.gguf); a folder needs none")
        result = state.hub.add(path, name=name, tags=tags, link=link, allow_nonfinite=allow_nonfinite,
                               new_version=new_version)
    else:
        if new_version:
            raise click.UsageError("--new-version takes an adapter folder")
        result = state.hub.add_file(path, base, name=name, tags=tags, link=link)
    if as_json:
        emit_json({"status": result.status, "message": result.message, "adapter": record_json(result.record)})
        return
    rec = result.record
    if result.status == "exists":
        stderr(f"hub: {result.message}; nothing added")
        return
    click.echo(f"added {ref_label(rec)}: r={rec.r} alpha={fmt_num(rec.lora_alpha)} targets={','.join(rec.target_modules)} "
               f"({human_size(rec.size_bytes)}{', linked' if link else ''})")
    warnings = [f for f in rec.findings if f["severity"] != "info"]
    for f in warnings:
        stderr(f"  {f['severity']}: {f['code']} {f['module'] or ''}: {f['message']}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=str))
@click.option("--tag", "tags", multiple=True, help="Tag to attach to every adapter added (repeatable).")
@click.option("--link", is_flag=True, help="Register folders in place instead of copying them into the store.")
@json_option
@pass_state
def scan(state, directory, tags, link, as_json):
    """Register every adapter folder found under DIRECTORY (recursively).

    Prints a summary of added, skipped (already registered) and failed folders;
    exits 1 if any folder failed.
    """
    with progress_bar("scanning") as update:
        result = state.hub.scan(directory, tags=tags, link=link, progress=update)
    if as_json:
        emit_json(result.to_dict())
    else:
        for path, error in result.failed:
            stderr(f"failed  {path}: {error.removeprefix('hub: error: ')}")
        click.echo(f"added {len(result.added)}, skipped {len(result.skipped)} (already registered), "
                   f"failed {len(result.failed)}")
    if result.failed:
        sys.exit(1)


LIST_HELP = """List registered adapters, filtered and sorted (the latest version of each name).

QUERY is the filter language the TUI's filter box speaks, e.g.
`hub list llama base:qwen r:16 target:q_proj tag:prod flag:dora not:rslora fits:BASE alpha:32`
(`not:F` is `-flag:F`, which needs `--` before it on a command line):
plain words must each appear in the name, description or a target module; every value
matches as a case-insensitive substring except r, alpha and flag. The options below are
the same filter spelled as flags, and combine with QUERY (all must hold).

Flags: """ + "; ".join(f"{k} = {v}" for k, v in FLAG_MEANINGS.items()) + "."


@cli.command("list", help=LIST_HELP)
@click.argument("query", nargs=-1)
@click.option("--base", help="Base model (declared name, registered base, or substring).")
@click.option("--rank", "-r", type=int, help="Only adapters with this r.")
@click.option("--alpha", type=float, help="Only adapters with this lora_alpha.")
@click.option("--target", "targets", multiple=True,
              help="Only adapters adapting a module whose suffix contains this (repeatable: all).")
@click.option("--tag", "tags", multiple=True, help="Only adapters with a tag containing this (repeatable: all).")
@click.option("--flag", "flags", multiple=True, type=click.Choice(FLAGS), help="Only adapters with this flag.")
@click.option("--no-flag", "no_flags", multiple=True, type=click.Choice(FLAGS), help="Only adapters without it.")
@click.option("--search", "-s", help="Words that must each appear in the name, description or a target.")
@click.option("--fits", help="Only adapters that fit this registered base (see `hub base`).")
@click.option("--sort", type=click.Choice(SORTS), default="name", show_default=True)
@click.option("--desc", is_flag=True, help="Sort descending.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--all-versions", is_flag=True, help="One row per version (default: one per name, its latest).")
@json_option
@pass_state
def list_(state, query, base, rank, alpha, targets, tags, flags, no_flags, search, fits, sort, desc, limit,
          all_versions, as_json):
    """List registered adapters, filtered and sorted (see LIST_HELP)."""
    from hub.reader import merge_filter_options, parse_query

    parsed = parse_query(" ".join(query), sort=sort, desc=desc)
    flt = merge_filter_options(parsed, base=base, rank=rank, alpha=alpha, targets=targets, tags=tags, flags=flags,
                               no_flags=no_flags, search=search, fits=fits, limit=limit, all_versions=all_versions,
                               base_id=state.reader.base_id)
    records = state.reader.list(flt, full=as_json, raw=as_json)
    if as_json:
        emit_json([record_json(r) for r in records])
        return
    if not records:
        stderr("no adapters match" if state.reader.count() else "the registry is empty; add one with `hub add PATH`")
        return
    table(["NAME", "BASE", "R", "ALPHA", "TARGETS", "FLAGS", "SIZE", "TAGS"],
          [[ref_label(r) if all_versions else r.name, r.base or r.base_model or "-", r.r, fmt_num(r.lora_alpha), ",".join(r.target_modules),
            ",".join(r.flags) or "-", human_size(r.size_bytes), ",".join(r.tags) or "-"] for r in records],
          max_widths={1: 32, 4: 40})


@cli.command()
@click.argument("name", metavar="NAME[@VERSION|ALIAS]")
@json_option
@pass_state
def show(state, name, as_json):
    """Show one adapter version (default: the latest): config, per-module rank table, files, findings, lineage."""
    rec = state.reader.get(name)
    if as_json:
        emit_json(record_json(rec))
        return
    src = rec.source
    origin = src.get("repo") and f"{src['repo']}@{src.get('revision') or 'main'} ({(src.get('commit') or '')[:12]})"
    rows = [
        ("name", rec.name), ("base_model", rec.base_model or "-"), ("registered base", rec.base or "-"),
        ("r / alpha", f"{rec.r} / {fmt_num(rec.lora_alpha)}  (scaling {rec.scaling:g}{', rsLoRA' if rec.use_rslora else ''})"),
        ("targets", ", ".join(rec.target_modules)), ("flags", ", ".join(rec.flags) or "-"),
        ("modules_to_save", ", ".join(rec.modules_to_save) or "-"),
        ("layers / modules", f"{rec.num_layers} / {rec.num_modules}"),
        ("parameters", f"{rec.param_count:,}"), ("dtype", rec.dtype or "-"),
        ("size", human_size(rec.size_bytes)), ("sha256", rec.sha256), ("tags", ", ".join(rec.tags) or "-"),
        ("storage", rec.storage + (f" ({rec.path})" if rec.path else "")),
        ("source", origin or src.get("path") or src.get("kind")), ("created", rec.created_at),
    ]
    if rec.version > 1 or rec.aliases:  # a one-version registry prints what it always did
        rows.insert(1, ("version", str(rec.version) + (f"  (aliases: {', '.join(rec.aliases)})" if rec.aliases
                                                       else "")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    click.echo("\nmodules")
    table(["MODULE", "R", "ALPHA", "IN", "OUT", "KIND"],
          [[p, m["r"], fmt_num(m["alpha"]), m["in_features"], m["out_features"],
            m.get("kind", "linear") + (" +dora" if m.get("dora") else "")] for p, m in rec.modules.items()])
    click.echo("\nfiles")
    table(["FILE", "SIZE", "SHA256"], [[f["name"], human_size(f["size"]), f["sha256"]] for f in rec.files])
    if rec.findings:
        click.echo("\nfindings")
        for f in rec.findings:
            click.echo(f"  {f['severity']:<7} {f['code']:<24} {f['module'] or '':<30} {f['message']}")
    if rec.lineage:
        click.echo("\nlineage")
        for p in rec.lineage:
            if p["type"] not in ("adapter", "base", "model"):     # a file of another format
                click.echo(f"  converted from {p['type']} {p['name']} (sha256 {p['sha256']})")
                continue
            gone = "" if p["present"] or p["type"] != "adapter" else "  (removed)"
            gone += f"  sha256 {p['sha256'][:12]}" if p["type"] in ("base", "tuned") and p.get("sha256") else ""
            weight = "" if p["weight"] is None else f"  weight {fmt_num(p['weight'])}"
            pinned = f"@{p['version']}" if p.get("version", 1) != 1 else ""
            click.echo(f"  {p['type']} {p['name']}{pinned}{weight}{gone}")
    if rec.recipe and "errors" in rec.recipe:   # made by resize / fix / extract
        _show_surgery(rec.recipe)
    elif rec.recipe:
        import json

        click.echo("\nrecipe")
        click.echo("  " + json.dumps(rec.recipe, indent=2).replace("\n", "\n  "))
    if rec.remotes:
        click.echo("\nremotes")
        for r in rec.remotes:
            click.echo(f"  {r['direction']} {r['repo_id']}@{r['revision']} {(r['commit'] or '')[:12]}")


def _show_surgery(recipe: dict) -> None:
    params = ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in recipe.get("params", {}).items())
    total = recipe.get("total_rel_error")
    click.echo(f"\n{recipe['operation']}{f' ({params})' if params else ''}: total relative error "
               f"{'-' if total is None else f'{total:.3e}'}")
    for note in recipe.get("notes") or ():
        click.echo(f"  note: {note}")
    click.echo("\nerrors")
    table(["MODULE", "ACTION", "RANK", "REL ERROR"],
          [[e["path"], e["action"], f"{'-' if e['rank_before'] is None else e['rank_before']} -> {e['rank_after']}",
            f"{e['rel_error']:.3e}"] for e in recipe["errors"]])


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME[@VERSION|ALIAS]...")
@click.option("--dry-run", is_flag=True, help="Show what would be removed and stop.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Remove an aliased version too, dropping its aliases.")
@json_option
@pass_state
def rm(state, names, dry_run, yes, force, as_json):
    """Move adapters to the trash (`hub trash restore NAME` brings one back).

    NAME moves every version of NAME; NAME@N (or NAME@ALIAS) one version, refused
    while an alias points at it unless --force. Their store files stay until the trash is
    emptied (`hub trash empty`), or until `hub doctor --fix` finds them past the retention
    period (HUB_TRASH_DAYS, default 30). Adapters combined from them and models merged
    with them are named first.
    """
    hub = state.hub
    plans = [hub.remove_plan(n, force=force) for n in names]
    dependents = hub.dependents_of(names)
    if not as_json:
        for p in plans:
            versions = f" ({len(p.versions)} versions)" if len(p.versions) > 1 else ""
            click.echo(f"{'would move' if dry_run else 'move'} {p.name}{versions} to the trash: {len(p.blobs)} "
                       f"store file(s), {human_size(p.bytes_freed)} freed when the trash is emptied")
            deps = dependents.get(names[plans.index(p)])
            if deps:
                click.echo(f"  made from it: {', '.join(f'{k} {n}' for k, n in deps)} "
                           "(their lineage will show it as removed)")
    if dry_run:
        if as_json:
            emit_json({"dry_run": True, "plans": [{**p.to_dict(), "dependents": dependents.get(n, [])}
                                                  for n, p in zip(names, plans)]})
        return
    if not yes:
        if not sys.stdin.isatty():   # a script or pipe cannot answer: refuse, as gh does
            from hub.errors import UsageError

            raise UsageError("refusing to remove without confirmation: stdin is not a terminal", "hub rm",
                             "pass --yes (-y) to remove without asking")
        if not click.confirm(f"Move {len(plans)} adapter(s) to the trash?", err=True):
            raise click.exceptions.Exit(1)
    done = [hub.remove(n, force=force).to_dict() for n in names]
    if as_json:
        emit_json({"dry_run": False, "removed": done})
    else:
        stderr(f"moved {len(done)} adapter(s) to the trash; `hub trash restore NAME` brings one back")


@cli.command()
@click.argument("name", metavar="NAME[@VERSION|ALIAS]")
@click.argument("tags", nargs=-1)
@click.option("--remove", "-d", "remove", multiple=True, help="Tag to remove (repeatable).")
@json_option
@pass_state
def tag(state, name, tags, remove, as_json):
    """Add TAGS to adapter NAME (and/or remove some with --remove); tags belong to one version (NAME: the latest)."""
    if not tags and not remove:
        raise click.UsageError("give tags to add, or --remove TAG")
    rec = state.hub.tag(name, add=tags, remove=remove)
    if as_json:
        emit_json({"name": rec.name, "tags": rec.tags})
    else:
        click.echo(f"{rec.name}: {', '.join(rec.tags) or '(no tags)'}")


@cli.command()
@click.argument("name")
@click.argument("new_name")
@pass_state
def rename(state, name, new_name):
    """Rename adapter NAME to NEW_NAME (every version and alias moves with it)."""
    rec = state.hub.rename(name, new_name)
    click.echo(f"renamed {name} -> {rec.name}")


@cli.command()
@click.argument("name", metavar="NAME[@VERSION|ALIAS]")
@click.argument("directory", metavar="OUT", type=click.Path(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace an existing output (atomically).")
@click.option("--format", "fmt", default="peft", show_default=True, metavar="FORMAT",
              help="peft (a folder), gguf (one file for llama.cpp --lora), ollama (a folder: GGUF + Modelfile), "
                   "or an installed format plugin (`hub plugins`).")
@click.option("--base", metavar="BASE",
              help="gguf/ollama: the base whose architecture and head counts decide the layout (default: the "
                   "registered base the adapter fits).")
@click.option("--outtype", type=click.Choice(["f32", "f16", "bf16", "q8_0"]),
              help="gguf/ollama: tensor type (default f32; q8_0 keeps rows that are not 32-multiples in F16).")
@click.option("--from", "from_model", metavar="MODEL",
              help="ollama: the Modelfile's FROM (an Ollama model name or a base GGUF file).")
@json_option
@pass_state
def export(state, name, directory, overwrite, fmt, base, outtype, from_model, as_json):
    """Write adapter NAME to OUT: a PEFT folder that PeftModel.from_pretrained loads, or
    another format with --format.

    \b
      hub export NAME ./out/NAME                                 PEFT folder
      hub export NAME NAME.gguf --format gguf [--outtype f16]     llama.cpp: llama-cli -m BASE.gguf --lora NAME.gguf
      hub export NAME ./ollama/NAME --format ollama --from smollm2:135m   then: ollama create NAME -f Modelfile
    """
    if fmt == "peft" and not (base or outtype or from_model):
        out = state.hub.export(name, directory, overwrite=overwrite)
        summary = {"name": name, "format": "peft", "path": str(out)}
    else:
        announce(f"exporting {name} as {fmt} to {directory}")
        with progress_bar(f"exporting {name} as {fmt}") as update:
            summary = state.hub.export_as(name, directory, fmt, base=base, outtype=outtype, from_model=from_model,
                                          overwrite=overwrite, progress=update)
    if as_json:
        emit_json(summary)
        return
    extra = ""
    if summary.get("architecture"):
        extra = f" ({summary['architecture']}, alpha {fmt_num(summary['alpha'])}, {summary['tensors']} tensors"
        extra += f", scaling folded into {len(summary['folded'])} module(s)" if summary.get("folded") else ""
        extra += ")"
    click.echo(f"exported {name} to {summary['path']}{extra}")


@cli.command()
@click.argument("name", required=False)
@json_option
@pass_state
def verify(state, name, as_json):
    """Re-hash stored files and check tensors for NaN/Inf (one adapter, or all).

    Exits 1 if any problem is found.
    """
    with progress_bar("verifying") as update:
        results = state.hub.verify(name, progress=update)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for r in results:
            click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.name}")
            for p in r.problems:
                click.echo(f"     {p}")
        bad = sum(not r.ok for r in results)
        stderr(f"{len(results)} checked, {bad} with problems")
    if any(not r.ok for r in results):
        sys.exit(1)
