"""`hub resize`, `hub fix`, `hub extract`: derive an adapter, with its measured cost."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, table
from hub.cli._progress import announce, progress_bar


def _err(x) -> str:
    return "-" if x is None else f"{x:.3e}"


def report(outcome, as_json: bool) -> None:
    """The per-module table, the totals, the notes; or all of it as JSON."""
    if as_json:
        emit_json(outcome.to_dict())
        return
    s = outcome.surgery
    for note in s.notes:
        stderr(f"hub: note: {note}")
    click.echo(outcome.message)
    table(["MODULE", "ACTION", "RANK", "ENERGY", "REL ERROR", "NOTE"],
          [[c.path, c.action, f"{c.rank_before if c.rank_before is not None else '-'} -> {c.rank_after}",
            f"{c.energy:.6f}", _err(c.rel_error), c.note] for c in s.changes])
    total = s.total_rel_error
    click.echo(f"total      relative error {_err(total)} (energy-weighted), worst module {_err(s.max_rel_error)}"
               if total is not None else f"total      worst module {_err(s.max_rel_error)}; some changes are "
               "unmeasured (no base)")
    if outcome.extra.get("logit_error") is not None:
        click.echo(f"logits     relative error {_err(outcome.extra['logit_error'])} on a fixed batch")
    if outcome.record is not None and outcome.extra.get("serve_command"):
        click.echo("serve with:")
        for line in outcome.extra["serve_command"]:
            click.echo(f"  {line}")


def result_options(default_name: str):
    """The options every surgery command shares: where the result goes and how it is reported."""
    def apply(f):
        for option in reversed((
            click.option("--name", "new_name", help=f"Name of the new adapter (default {default_name})."),
            click.option("--out", type=click.Path(file_okay=False),
                         help="Also write the new adapter as a PEFT folder here."),
            click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable)."),
            click.option("--dry-run", is_flag=True, help="Compute and report, register nothing."),
            json_option,
        )):
            f = option(f)
        return f
    return apply


@cli.command()
@click.argument("name")
@click.option("--rank", type=int, help="Target rank K: every module keeps its best rank-K approximation.")
@click.option("--energy", type=float, help="Per module, the smallest rank keeping this fraction of the squared "
                                           "Frobenius norm, e.g. 0.99 (capped by --rank when both are given).")
@result_options("NAME-rK or NAME-eE")
@pass_state
def resize(state, name, rank, energy, new_name, out, tags, dry_run, as_json):
    """Shrink an adapter's rank, optimally, without a base model.

    Every module's scaled delta (rsLoRA, rank/alpha patterns folded) is factored
    from its A and B (QR of B and Aᵀ, SVD of the small core: no full-size matrix)
    and truncated: by Eckart–Young the best approximation at that rank. Prints
    each module's retained energy and relative error. A result whose rank does
    not drop says so and writes nothing. The result is a plain PEFT LoRA,
    registered with the original as its parent.

    \b
    hub resize style --rank 8
    hub resize style --energy 0.99 --rank 32 --name style-small
    """
    announce(f"resizing {name}")
    with progress_bar("resizing", unit="adapters") as update:
        outcome = state.hub.resize(name, rank=rank, energy=energy, new_name=new_name, out=out, tags=tags,
                                   dry_run=dry_run, progress=update)
    report(outcome, as_json)


@cli.command()
@click.argument("name")
@click.option("--runtime", "-r", required=True, metavar="RUNTIME",
              help="vllm, llama.cpp, ollama or peft: the runtime the result must load in.")
@click.option("--base", help="Registered base name or model folder (default: the adapter's registered base). "
                             "Needed to turn DoRA and modules_to_save into plain LoRA.")
@click.option("--max-lora-rank", type=int, help="Largest rank the runtime serves (vLLM: one of 1, 8, 16, 32, 64, "
                                                "128, 256, 320, 512; default 16).")
@result_options("NAME-RUNTIME")
@pass_state
def fix(state, name, runtime, base, max_lora_rank, new_name, out, tags, dry_run, as_json):
    """Derive an adapter that a serving runtime loads, with each change's cost.

    `hub check NEW --runtime R` passes on the result. One line per module says
    what changed and its relative error ||dW_new - dW_target|| / ||dW_target||
    against the change PEFT applies on the base; the total is energy-weighted.

    \b
      rank above the limit   best approximation within it (vLLM: --max-lora-rank)
      DoRA                   plain LoRA closest to its effective change on --base
                             (full-rank once a magnitude moved: approximate, and
                             valid on that base only; its hash is in the lineage)
      modules_to_save        with --base: LoRA of (saved - base); without: dropped
      rsLoRA, alpha_pattern  folded into the factors
    Ends with the command line that serves it.

    \b
    hub fix style --runtime vllm --max-lora-rank 16
    hub fix dora-run --runtime vllm --base Llama-3.2-1B --out ./dora-run-vllm
    hub fix style --runtime llama.cpp
    """
    announce(f"fixing {name} for {runtime}")
    with progress_bar("fixing", unit="modules") as update:
        outcome = state.hub.fix(name, runtime, base=base, max_lora_rank=max_lora_rank, new_name=new_name, out=out,
                                tags=tags, dry_run=dry_run, progress=update)
    report(outcome, as_json)


@cli.command()
@click.option("--base", required=True, help="The base model: a registered base name or a model folder.")
@click.option("--tuned", required=True, type=click.Path(file_okay=False), help="The fully fine-tuned model's folder "
                                                                              "(same architecture and shapes).")
@click.option("--rank", type=int, help="Rank K of every extracted module (randomized SVD).")
@click.option("--energy", type=float, help="Per module, the smallest rank keeping this fraction of the change's "
                                           "squared norm (exact SVD; capped by --rank when both are given).")
@click.option("--target", "targets", multiple=True, metavar="MODULES",
              help="Only these modules (suffixes like q_proj or full paths; comma-separated, repeatable).")
@click.option("--max-error", type=float, help="A weight whose relative error stays above this (default 0.5) "
                                              "is not low-rank at the chosen rank: kept and flagged, or see below.")
@click.option("--save-modules", "save_modules", is_flag=True,
              help="Save such weights, and changed 1-D tensors (norms, biases), whole as modules_to_save.")
@click.option("--leave-out", is_flag=True, help="Leave such weights out (reported with their size).")
@click.option("--eval-logits", is_flag=True, help="Also load the three models (whole, CPU) and report "
                                                  "||logits(base+LoRA) - logits(tuned)|| / ||logits(tuned) - "
                                                  "logits(base)|| on a fixed batch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the randomized SVD and the batch.")
@result_options("TUNED-lora-rK")
@pass_state
def extract(state, base, tuned, rank, energy, targets, max_error, save_modules, leave_out, eval_logits, seed,
            new_name, out, tags, dry_run, as_json):
    """Extract a LoRA from a fully fine-tuned model's difference to its base.

    Streams both models' safetensors one tensor pair at a time (memory near
    one pair, like `hub merge`) and factors each changed Linear / Conv1D /
    Embedding weight by randomized SVD; each module's relative error is
    measured exactly and printed. What becomes a factor is decided by that
    error: a changed embedding row is exactly rank 1; a weight that is not
    low-rank at the rank is flagged, saved whole (--save-modules) or left out
    (--leave-out). A changed bias of an extracted Linear becomes its lora_B
    bias (exact). Nothing is dropped silently. The adapter is registered with
    the base's and the tuned model's content hashes as lineage; `hub show`
    prints the error table.

    \b
    hub extract --base Llama-3.2-1B --tuned ./full-ft --rank 16 --name ft-r16
    hub extract --base ./base --tuned ./ft --energy 0.9 --rank 64 --save-modules
    """
    if save_modules and leave_out:
        raise click.UsageError("--save-modules and --leave-out are alternatives: pass one")
    split = tuple(t.strip() for spec in targets for t in spec.split(",") if t.strip())
    announce(f"extracting an adapter from {tuned} against {base}")
    with progress_bar("extracting", unit="modules") as update:
        outcome = state.hub.extract(base, tuned, rank=rank, energy=energy, targets=split or None,
                                    high_error="save" if save_modules else "leave" if leave_out else "keep",
                                    max_error=max_error, new_name=new_name, out=out, eval_logits=eval_logits, seed=seed,
                                    tags=tags, dry_run=dry_run, progress=update)
    report(outcome, as_json)
