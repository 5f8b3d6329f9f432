"""`hub base add|list|show|rm`: base models as registry entries."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, human_size, table
from hub.cli._progress import progress_bar


def _quant(rec) -> str:
    q = rec.quantization or {}
    if not q:
        return "-"
    if rec.quant_scheme:   # bitsandbytes: what hub reads from the checkpoint itself
        s = rec.quant_scheme
        detail = [f"block size {s['blocksize']}", "double quant" if s.get("double_quant") else ""] \
            if s["bits"] == 4 else []
        detail += [f"from {s['dtype']}", f"compute {s['compute_dtype']}" if s.get("compute_dtype") else ""]
        return f"bitsandbytes-{s['bits']}bit {s['method']} ({', '.join(d for d in detail if d)})"
    method = q.get("quant_method") or ("bitsandbytes" if q.get("load_in_4bit") or q.get("load_in_8bit") else "?")
    bits = q.get("bits") or (4 if q.get("load_in_4bit") else 8 if q.get("load_in_8bit") else None)
    return f"{method}{'-' + str(bits) + 'bit' if bits else ''}"


@cli.group()
def base():
    """Base models: register a model folder's shapes (no weights loaded) so adapters can be
    checked against it (`hub check NAME --base B`, `hub list --fits B`)."""


@base.command("add")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--name", help="Registry name (default: the folder's name).")
@json_option
@pass_state
def base_add(state, path, name, as_json):
    """Register a local Hugging Face model folder (config.json + safetensors, single or sharded).

    Records architecture, dtype, quantization config, tied embeddings, vocabulary
    size and the shape of every tensor from config.json and the safetensors headers;
    then checks every registered adapter against it and stores the verdicts.
    """
    with progress_bar("checking adapters") as update:
        rec = state.hub.add_base(path, name=name, progress=update)
    if as_json:
        emit_json(rec.to_dict())
        return
    click.echo(f"added base {rec.name}: {rec.architecture or rec.model_type or '?'}, {rec.num_layers} layers, "
               f"hidden {rec.hidden_size}, vocab {rec.vocab_size}, {rec.dtype}, {human_size(rec.size_bytes)}"
               f"{', quantized ' + _quant(rec) if rec.quantization else ''}"
               f"{', tied embeddings' if rec.tie_word_embeddings else ''}")
    click.echo(f"{rec.fits} registered adapter(s) fit it (`hub list --fits {rec.name}`)")


@base.command("list")
@json_option
@pass_state
def base_list(state, as_json):
    """List registered bases with the number of registered adapters that fit each."""
    bases = state.reader.list_bases()
    if as_json:
        emit_json([b.to_dict() for b in bases])
        return
    if not bases:
        stderr("hub: no bases registered; add one with `hub base add PATH`")
        return
    table(["name", "architecture", "layers", "hidden", "vocab", "dtype", "quant", "tied", "fits", "size"],
          [[b.name, b.architecture or b.model_type or "-", b.num_layers, b.hidden_size, b.vocab_size, b.dtype,
            _quant(b), "yes" if b.tie_word_embeddings else "no", b.fits, human_size(b.size_bytes)] for b in bases],
          max_widths={0: 40, 1: 32})


@base.command("show")
@click.argument("name")
@click.option("--modules", "show_modules", is_flag=True, help="Also list every adaptable module and its shape.")
@json_option
@pass_state
def base_show(state, name, show_modules, as_json):
    """Show one registered base: its metadata and (with --modules) its module shape table."""
    rec = state.reader.get_base(name)
    if as_json:
        emit_json(rec.to_dict())
        return
    for key, value in [("name", rec.name), ("path", rec.path or "-"), ("architecture", rec.architecture or "-"),
                       ("model_type", rec.model_type or "-"), ("dtype", rec.dtype), ("layers", rec.num_layers),
                       ("hidden size", rec.hidden_size), ("vocabulary", rec.vocab_size),
                       ("tied embeddings", "yes" if rec.tie_word_embeddings else "no"),
                       ("quantization", _quant(rec)), ("tensors", rec.num_tensors),
                       ("adaptable modules", len(rec.modules)), ("size", human_size(rec.size_bytes)),
                       ("shape signature", rec.shape_signature[:16]), ("adapters that fit", rec.fits)]:
        click.echo(f"{key + ':':<19}{value}")
    if show_modules:
        table(["module", "kind", "in", "out", "dtype"],
              [[p, m["kind"], m["in_features"] if m["in_features"] is not None else "?",
                m["out_features"] if m["out_features"] is not None else "?", m["dtype"]]
               for p, m in rec.modules.items()])


@base.command("rm")
@click.argument("name")
@json_option
@pass_state
def base_rm(state, name, as_json):
    """Forget a registered base (its folder is not touched) and its stored verdicts."""
    rec = state.hub.remove_base(name)
    if as_json:
        emit_json({"removed": rec.name})
    else:
        click.echo(f"removed base {rec.name} (its folder {rec.path} is untouched)")
