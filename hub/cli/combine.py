"""`hub combine` (weighted combination into a new adapter) and `hub similar`."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, fmt_num, table
from hub.cli._progress import progress_bar

METHODS = ("cat", "linear", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune")  # built-in (hub.plugins)


def _fmt(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


@cli.command()
@click.argument("parents", nargs=-1, metavar="NAME:WEIGHT...")
@click.option("--method", "-m", metavar="[" + "|".join(METHODS) + "|PLUGIN]",
              help="Combination method (see below), or one an installed plugin adds (`hub plugins`).")
@click.option("--name", help="Name of the new adapter (with --recipe: overrides the recipe's name).")
@click.option("--rank", type=int, help="svd/ties/dare/magnitude_prune: target rank K per module "
                                       "(default: the largest parent rank there).")
@click.option("--energy", type=float, help="svd/...: per module, the smallest rank keeping this fraction of the "
                                           "squared Frobenius norm, e.g. 0.99 (capped by --rank).")
@click.option("--density", type=float, help="ties/dare/magnitude_prune: fraction of delta entries kept.")
@click.option("--seed", type=int, help="dare_*: seed of the random masks (default 0).")
@click.option("--majority-sign-method", type=click.Choice(["total", "frequency"]),
              help="ties/dare_ties: how each entry's sign is elected (default total).")
@click.option("--layer-weights", "layer_weights", multiple=True, metavar="SPEC",
              help="Scale parents per layer: [PARENT@]LAYER|LOW-HIGH|/REGEX/=FACTOR, comma-separated, repeatable; "
                   "the last matching rule wins.")
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Run a JSON/YAML recipe (schemas/recipe.schema.json; `hub show NAME` prints one).")
@click.option("--drop-dora", is_flag=True, help="Combine only the LoRA part of DoRA parents (their magnitudes "
                                                "depend on the base and cannot be combined).")
@click.option("--drop-modules-to-save", is_flag=True, help="Leave out parents' modules_to_save (whole weights, "
                                                           "not deltas).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Dtype of the written factors (default float32).")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--dry-run", is_flag=True, help="Check and compute, report ranks and errors, register nothing.")
@click.option("--modules", "show_modules", is_flag=True, help="Print the per-module rank / energy / error table.")
@json_option
@pass_state
def combine(state, parents, method, name, rank, energy, density, seed, majority_sign_method, layer_weights,
            recipe_file, drop_dora, drop_modules_to_save, dtype, tags, dry_run, show_modules, as_json):
    """Combine adapters with weights into a new registered adapter.

    \b
    Methods (the result is a plain PEFT LoRA with scaling 1):
      cat, linear      exact weighted sum of the deltas, any signs and ranks
                       (rank = sum of the parents' ranks)
      svd              best rank-K approximation of that sum, from the factors;
                       retained energy and error reported per module
      ties, dare_linear, dare_ties, magnitude_prune
                       delta-space merging (need --density), then rank K
    A parent missing a module counts as zero there. The recipe (parents, their
    hashes, weights, method, parameters, seed) is stored with the adapter:
    `hub show NEW` prints it and `hub combine --recipe FILE` replays it.

    \b
    hub combine style:0.7 domain:1.0 --method cat --name style-domain
    hub combine a:1 b:-0.5 --method svd --energy 0.99 --rank 64 --name a-minus-b
    hub combine a:1 b:1 c:1 -m dare_ties --density 0.3 --seed 7 --name abc
    hub combine a:1 b:1 -m linear --layer-weights 'b@0-15=0.2' --name ab
    hub combine --recipe mix.yaml --name mix-again
    """
    from hub.names import parse_weighted

    hub = state.hub
    with progress_bar("combining", unit="modules") as update:
        if recipe_file:
            extra = [opt for opt, val in (("NAME:WEIGHT", parents), ("--method", method), ("--rank", rank),
                                          ("--energy", energy), ("--density", density), ("--seed", seed),
                                          ("--majority-sign-method", majority_sign_method),
                                          ("--layer-weights", layer_weights), ("--drop-dora", drop_dora),
                                          ("--drop-modules-to-save", drop_modules_to_save), ("--dtype", dtype))
                     if val]
            if extra:
                raise click.UsageError(f"--recipe fixes the combination; drop {', '.join(extra)} "
                                       "(only --name, --tag, --dry-run and --json go with it)")
            outcome = hub.combine_recipe(recipe_file, name=name, tags=tags, dry_run=dry_run, progress=update)
        else:
            if not parents:
                raise click.UsageError("name the adapters to combine as NAME:WEIGHT (or pass --recipe FILE)")
            if not method:
                raise click.UsageError("pass --method (cat, linear, svd, ties, dare_linear, dare_ties, "
                                       "magnitude_prune)")
            if not name:
                raise click.UsageError("pass --name for the new adapter")
            params = {"rank": rank, "energy": energy, "density": density, "seed": seed,
                      "majority_sign_method": majority_sign_method}
            outcome = hub.combine([parse_weighted(p) for p in parents], method, name, params,
                                  layer_weights=",".join(layer_weights), drop_dora=drop_dora,
                                  drop_modules_to_save=drop_modules_to_save, dtype=dtype or "float32",
                                  tags=tags, dry_run=dry_run, progress=update)
    if as_json:
        emit_json(outcome.to_dict(modules=True))
        return
    for f in outcome.findings:
        if f.severity != "info":
            stderr(f"hub: {f.severity}: {f.message}")
    for note in outcome.notes:
        stderr(f"hub: note: {note}")
    s = outcome.summary
    ranks = str(s["rank_min"]) if s["rank_min"] == s["rank_max"] else f"{s['rank_min']}-{s['rank_max']}"
    params = ", ".join(f"{k}={fmt_num(v)}" for k, v in s["params"].items())
    click.echo(outcome.message)
    click.echo(f"method     {s['method']}{f' ({params})' if params else ''}: "
               f"{'exact' if s['exact'] else 'approximate'}")
    click.echo(f"modules    {s['modules']}, rank {ranks}")
    if not s["exact"]:
        worst = max(outcome.modules, key=lambda m: m.rel_error)
        click.echo(f"error      retained energy >= {s['min_energy']:.6f}, relative error <= "
                   f"{s['max_rel_error']:.3e} (worst: {worst.path})")
    if show_modules:
        table(["MODULE", "RANK", "ENERGY", "REL ERROR", "PARENTS"],
              [[m.path, m.rank, f"{m.energy:.6f}", f"{m.rel_error:.3e}", ",".join(m.parents)]
               for m in outcome.modules])


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME [NAME...]")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Entries sampled per module for sign conflicts (default 65536; exact for smaller modules).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampled entries.")
@click.option("--modules", "show_modules", is_flag=True, help="Print the per-module table of every pair.")
@json_option
@pass_state
def similar(state, names, samples, seed, show_modules, as_json):
    """How alike adapters' deltas are: cosine similarity and sign conflicts.

    Computed from the LoRA factors (no full-size matrix is formed): the cosine of
    the deltas per module and over the whole adapter (a module only one adapter
    has counts as zero for the other), and the fraction of entries of shared
    modules whose signs disagree (what TIES has to resolve). Near 0 cosine: the
    adapters do different things and sum cleanly; negative: they pull against
    each other. One NAME compares it with every registered adapter that shares
    modules with it, most similar first (signed cosine, descending).

    \b
    hub similar style domain
    hub similar a b c --json
    hub similar style
    """
    hub = state.hub
    with progress_bar("loading", unit="adapters") as update:
        report = hub.similar(list(names), samples=samples, seed=seed, progress=update)
    if as_json:
        emit_json(report.to_dict(modules=True))
        return
    if not report.pairs:
        stderr(f"no registered adapter shares modules with {names[0]}")
        return
    table(["A", "B", "COSINE", "SIGN CONFLICT", "SHARED", "ONLY A", "ONLY B"],
          [[p.a, p.b, _fmt(p.cosine), _fmt(p.sign_conflict) + ("" if p.sign_conflict_exact else "~"),
            p.shared_modules, p.only_a, p.only_b] for p in report.pairs])
    if any(not p.sign_conflict_exact for p in report.pairs):
        stderr(f"~ sign conflicts estimated from {report.samples} sampled entries per module (seed {report.seed})")
    if show_modules:
        for p in report.pairs:
            click.echo(f"\n{p.a} vs {p.b}")
            table(["MODULE", "COSINE", "SIGN CONFLICT", "IN"],
                  [[m.path, _fmt(m.cosine), _fmt(m.sign_conflict),
                    "both" if m.in_a and m.in_b else (p.a if m.in_a else p.b)] for m in p.modules])
