"""`hub resize`, `hub fix`, `hub extract`: derive an adapter, with its measured cost."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, table
from hub.cli._progress import progress_bar


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
    for key, label in (("logit_error", "logits"), ("serve_command", "serve")):
        if outcome.extra.get(key) is not None:
            value = outcome.extra[key]
            click.echo(f"{label.ljust(10)} {value if isinstance(value, str) else _logits(value)}")


def _logits(rows) -> str:
    return ", ".join(f"rank {r['rank']}: {r['rel_error']:.3e}" for r in rows) if isinstance(rows, list) else str(rows)


@cli.command()
@click.argument("name")
@click.option("--rank", type=int, help="Target rank K: every module keeps its best rank-K approximation.")
@click.option("--energy", type=float, help="Per module, the smallest rank keeping this fraction of the squared "
                                           "Frobenius norm, e.g. 0.99 (capped by --rank when both are given).")
@click.option("--name", "new_name", help="Name of the new adapter (default NAME-rK or NAME-eE).")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--dry-run", is_flag=True, help="Compute and report, register nothing.")
@json_option
@pass_state
def resize(state, name, rank, energy, new_name, tags, dry_run, as_json):
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
    with progress_bar("resizing", unit="adapters") as update:
        outcome = state.hub.resize(name, rank=rank, energy=energy, new_name=new_name, tags=tags, dry_run=dry_run,
                                   progress=update)
    report(outcome, as_json)
