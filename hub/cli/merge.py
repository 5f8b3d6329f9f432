"""`hub merge` (adapters folded into base weights, streamed) and `hub models` (what was merged)."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, fmt_num, human_size, table
from hub.cli._progress import announce, byte_progress


def parse_adapter_spec(spec: str) -> tuple[str, float]:
    """NAME, NAME:WEIGHT, or an adapter folder with an optional :WEIGHT; a weight that is
    not a finite number is refused (unless the whole spec is an existing folder)."""
    import os

    from hub.names import parse_weight

    ref, sep, weight = spec.rpartition(":")
    if not sep or os.path.exists(spec):
        return spec, 1.0
    return ref, parse_weight(weight, spec)


@cli.command()
@click.argument("adapters", nargs=-1, required=True, metavar="NAME[:WEIGHT]...")
@click.option("--base", required=True, metavar="PATH_OR_NAME",
              help="Base model: a registered base name (`hub base list`) or a Hugging Face model folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str), metavar="DIR",
              help="Output folder; written beside it under a hidden name and renamed when complete.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the fp32 maths runs (auto: CUDA when available).")
@click.option("--dtype", type=click.Choice(["keep", "bf16", "fp16", "fp32"]), default="keep", show_default=True,
              help="dtype of the written weights (keep: each tensor's base dtype; a bitsandbytes base: the "
                   "dtype its checkpoint records).")
@click.option("--as-quantized", "as_quantized", type=click.Choice(["nf4", "fp4", "int8"]),
              help="QLoRA-faithful merge into a full-precision base: each linear weight becomes "
                   "dequant(quant(W)) as bitsandbytes computes it, the weight the adapter was trained against.")
@click.option("--blocksize", type=int, default=64, show_default=True, help="4-bit block size (--as-quantized).")
@click.option("--double-quant", is_flag=True, help="Double quantization of the 4-bit absmax (--as-quantized).")
@click.option("--load-dtype", type=click.Choice(["bf16", "fp16", "fp32"]),
              help="dtype the base was loaded in for training (--as-quantized; default: the base's own).")
@click.option("--keep-unadapted", is_flag=True,
              help="--as-quantized: copy weights no adapter touches as they are, not round-tripped.")
@click.option("--requantize", is_flag=True,
              help="Write a bitsandbytes checkpoint (4-bit or 8-bit, as the base or --as-quantized says) that "
                   "transformers loads with BitsAndBytesConfig; equal to PEFT's merge of the quantized model.")
@click.option("--check-logits", is_flag=True,
              help="With --requantize: also merge in full precision (hidden scratch folder, both models in "
                   "memory) and report the logits' relative change on a fixed batch.")
@click.option("--shard-size", default="5GB", show_default=True, metavar="SIZE",
              help="Largest output shard, e.g. 5GB, 500MB, 2GiB.")
@click.option("--name", help="Name to record the merged model under (default: the output folder's name).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder (swapped in whole at the end).")
@click.option("--dry-run", is_flag=True, help="Check and print the plan (tensors, bytes, peak memory, device); "
                                              "write nothing.")
@json_option
@pass_state
def merge(state, adapters, base, out, device, dtype, as_quantized, blocksize, double_quant, load_dtype,
          keep_unadapted, requantize, check_logits, shard_size, name, overwrite, dry_run, as_json):
    """Merge adapters, with weights, into a base model's weights.

    \b
    Computes W + Σ wᵢ·scaleᵢ·BᵢAᵢ tensor by tensor, in fp32 on the device, straight
    from the base's safetensors shards: memory stays near one tensor, not the model.
    Handles rsLoRA, rank/alpha patterns, DoRA (renormalised against the exact base
    rows), fan_in_fan_out (GPT-2 Conv1D), embedding LoRA, modules_to_save, lora_bias
    and tied embeddings; equal to PEFT's merge_and_unload. A weight scales the
    adapter like PEFT's set_scale. The compatibility check runs first; a mismatch
    is refused with its findings. The result (sharded safetensors + index, config,
    generation config, tokenizer files, hub_merge.json lineage) is recorded in the
    registry: see `hub models`.

    \b
    hub merge --base ./Llama-3.2-1B style --out ./llama-style
    hub merge --base llama-1b style:0.7 domain:1.0 tone:-0.3 --out ./mix --dtype bf16
    hub merge --base llama-1b style --out ./x --dry-run

    \b
    Quantized bases (bitsandbytes 4-bit NF4/FP4 or 8-bit checkpoints saved by
    transformers) are dequantized exactly as bitsandbytes does, tensor by tensor;
    --requantize writes the result packed again. --as-quantized merges a QLoRA
    adapter into the full-precision base as the quantized model it was trained on.
    Every quantized merge prints and records a drift report (`hub models NAME --json`).
    GPTQ, AWQ and GGUF bases are refused.

    \b
    hub merge --base ./llama-1b-nf4 qlora --out ./merged                 # dequantized + delta
    hub merge --base ./llama-1b-nf4 qlora --out ./merged-nf4 --requantize
    hub merge --base ./llama-1b qlora --out ./m --as-quantized nf4 --double-quant --load-dtype bf16
    """
    announce(f"{'planning the merge of' if dry_run else 'merging'} {', '.join(adapters)} into {base}"
             + ("" if dry_run else f" -> {out}"))
    from hub.merge import QuantOptions, parse_size, torch_loader

    parse_size(shard_size)   # a usage error before any work
    if not (dry_run and device == "cpu"):
        # torch (seconds) loads on another core while the registry, adapters and headers are read
        torch_loader.start("cpu" if dry_run else device)
    pairs = [parse_adapter_spec(s) for s in adapters]
    quant = None
    if as_quantized or requantize or keep_unadapted:
        from hub.quant.scheme import QuantScheme

        scheme = None
        if as_quantized:
            dtypes = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
            scheme = QuantScheme(as_quantized, blocksize, double_quant, dtypes.get(load_dtype))
        elif keep_unadapted or double_quant or load_dtype:
            raise click.UsageError("--keep-unadapted, --double-quant and --load-dtype go with --as-quantized")
        quant = QuantOptions(as_quantized=scheme, requantize=requantize, keep_unadapted=keep_unadapted)
    try:
        with byte_progress("merging") as update:
            outcome = state.hub.merge(base, pairs, out, name=name, device=device, dtype=dtype,
                                      shard_size=shard_size, overwrite=overwrite, dry_run=dry_run,
                                      progress=None if dry_run else update, quant=quant, check_logits=check_logits)
    finally:
        torch_loader.wait()   # an early error must not end the interpreter halfway through torch's import
    if as_json:
        emit_json(outcome.to_dict())
        return
    plan = outcome.plan
    if dry_run:
        _print_plan(plan)
        return
    result = outcome.result
    rate = result["bytes_written"] / max(result["seconds"], 1e-9)
    click.echo(f"merged {len(pairs)} adapter(s) into {result['out_dir']}: {result['tensors_touched']} of "
               f"{result['tensors_total']} tensors changed, {human_size(result['bytes_written'])} in "
               f"{len(result['shards'])} shard(s), {result['seconds']:.1f} s ({human_size(int(rate))}/s) "
               f"on {result['device']}")
    if result["untied_embeddings"]:
        stderr("hub: the adapters change one side of the tied embeddings; both were written and "
               "tie_word_embeddings set to false")
    if result.get("drift"):
        _print_drift(result["drift"])
    click.echo(f"recorded as {outcome.record.name} (`hub models {outcome.record.name}`)")


def _print_drift(drift: dict) -> None:
    """The drift report's summary: medians (and the worst module) of each measure."""
    s = drift["summary"]
    labels = [("adapter_change", "adapter's relative change ‖ΔW‖/‖W‖"),
              ("base_quant_error", "base quantization error ‖Q(W)−W‖/‖W‖"),
              ("requant_error", "requantization error ‖Q(W')−W'‖/‖ΔW‖"),
              ("delta_kept", "adapter effect kept after requantizing")]
    click.echo(f"drift over {s['modules']} adapted weight(s) (median, worst):")
    for key, label in labels:
        if s.get(key):
            worst = s[key]["min"] if key == "delta_kept" else s[key]["max"]
            click.echo(f"  {label}: {s[key]['median']:.4g} ({worst:.4g})")
    if drift.get("logits"):
        click.echo(f"  logits' relative change, requantized vs full precision: "
                   f"{drift['logits']['logits_relative_change']:.4g}")


def _print_plan(plan: dict) -> None:
    adapters = ", ".join(f"{a['name']}:{fmt_num(a['weight'])}" for a in plan["adapters"])
    rows = [
        ("base", plan["base"]), ("adapters", adapters), ("out", plan["out"]), ("name", plan["name"]),
        ("device", plan["device"]), ("dtype", plan["dtype"]),
        ("tensors", f"{plan['tensors_touched']} of {plan['tensors_total']} changed"),
        ("read", human_size(plan["bytes_read"])), ("written", human_size(plan["bytes_written"])),
        ("shards", str(len(plan["shards"]))),
        ("peak memory", f"~{human_size(plan['peak_memory_estimate'])} (estimate)"),
    ]
    if plan["untie_embeddings"]:
        rows.append(("embeddings", "tied in the base; both sides written, config untied"))
    if plan.get("quantization"):
        q = plan["quantization"]
        rows.append(("quantization", f"{q['mode']} {q['scheme']['method']}"
                                     f"{', requantized' if q['requantize'] else ''} ({q['backend']})"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    for f in plan["findings"]:
        if f["severity"] != "info":
            stderr(f"  {f['severity']}: {f['code']} {f['module'] or ''}: {f['message']}")
    click.echo("dry run: nothing written")


@cli.command()
@click.argument("name", required=False)
@json_option
@pass_state
def models(state, name, as_json):
    """List merged models recorded by `hub merge`, or show one with its lineage.

    Each record names the base, the adapters with their weights and content hashes,
    the hub version and the time; `missing` marks folders deleted since.
    """
    if name:
        rec = state.reader.get_model(name)
        if as_json:
            emit_json(rec.to_dict())
            return
        rows = [("name", rec.name), ("path", rec.path + ("" if rec.exists else "  (missing)")),
                ("base", rec.base_name or "-"), ("dtype", rec.dtype or "-"), ("size", human_size(rec.size_bytes)),
                ("shards", str(rec.num_shards)), ("hub", rec.hub_version or "-"), ("created", rec.created_at),
                ("device", rec.recipe.get("device", "-"))]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            click.echo(f"{key.ljust(width)}  {value}")
        if rec.drift:
            _print_drift(rec.drift)
        click.echo("adapters:")
        for p in rec.adapters:
            click.echo(f"  {p['name']}:{fmt_num(p['weight'])}  sha256 {p['sha256'][:12]}"
                       f"{'' if p['present'] else '  (no longer registered)'}")
        return
    records = state.reader.list_models()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        stderr("no merged models yet; `hub merge --base B NAME --out DIR` makes one")
        return
    table(["NAME", "BASE", "ADAPTERS", "DTYPE", "SIZE", "CREATED", "PATH"],
          [[r.name, r.base_name or "-", ", ".join(f"{p['name']}:{fmt_num(p['weight'])}" for p in r.adapters),
            r.dtype or "-", human_size(r.size_bytes), r.created_at[:19],
            r.path + ("" if r.exists else " (missing)")] for r in records],
          max_widths={1: 30, 2: 40})
