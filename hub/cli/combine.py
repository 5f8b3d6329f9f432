"""`hub combine` (weighted combination into a new adapter) and `hub similar`."""

from __future__ import annotations

import os
import sys
import textwrap

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, fmt_num, table
from hub.cli._progress import announce, progress_bar
from hub.combine.registry import builtin_methods, shared_params

BUILTIN = builtin_methods()        # declarations only: no torch, no maths
PARAMS = shared_params(BUILTIN)    # one option per parameter name, shared by the methods taking it


def _fmt(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _param_option(param, methods: list[str]):
    """The click option of a declared method parameter."""
    kind = click.Choice(list(param.choices)) if param.choices else param.type
    default = f"; default {param.default}" if param.default is not None else ""
    return click.option(param.option, param.name, type=kind, default=None,
                        help=f"{', '.join(methods)}: {param.help}{default}.")


def method_options(f):
    """--method, one option per declared parameter, and --param for a plugin's own ones."""
    for param, methods in reversed(PARAMS.values()):
        f = _param_option(param, methods)(f)
    f = click.option("--param", "extra_params", multiple=True, metavar="NAME=VALUE",
                     help="A parameter of a plugin method that has no option of its own (repeatable).")(f)
    return click.option("--method", "-m", metavar="[" + "|".join(m.name for m in BUILTIN) + "|PLUGIN]",
                        help="Combination method (listed above), or one an installed plugin adds (`hub plugins`).")(f)


def _methods_help() -> str:
    rows = []
    for m in BUILTIN:
        lines = textwrap.wrap(m.summary, 62) or [""]
        rows.append(f"  {m.name:<16} {lines[0]}")
        rows += [f"  {'':<16} {line}" for line in lines[1:]]
    return "\n".join(rows)


HELP = f"""Combine adapters with weights into a new registered adapter.

    \b
    Methods (the result is a plain PEFT LoRA with scaling 1):
{textwrap.indent(_methods_help(), "    ")}
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


def _given_params(method: str, params: dict, extra: tuple[str, ...]) -> dict:
    """The declared options' values plus ``--param NAME=VALUE`` pairs typed by the method's declaration."""
    out = dict(params)
    if not extra:
        return out
    from hub.combine.registry import get_method

    spec = get_method(method)
    for item in extra:
        key, sep, text = item.partition("=")
        declared = spec.param(key.strip().replace("-", "_"))
        if not sep or declared is None:
            accepted = ", ".join(p.name for p in spec.params) or "none"
            raise click.UsageError(f"--param {item!r}: method {method} takes NAME=VALUE with NAME one of: {accepted}")
        out[declared.name] = declared.parse(text.strip())
    return out


@cli.command(help=HELP)
@click.argument("parents", nargs=-1, metavar="NAME:WEIGHT...")
@method_options
@click.option("--name", help="Name of the new adapter (with --recipe: overrides the recipe's name).")
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
def combine(state, parents, method, extra_params, name, layer_weights, recipe_file, drop_dora, drop_modules_to_save,
            dtype, tags, dry_run, show_modules, as_json, **params):
    from hub.refs import parse_weighted

    if "numpy" not in sys.modules:
        # hub.combine runs BLAS on one thread per module (hub.combine.arrays.single_threaded), so the
        # thread pool OpenBLAS starts when numpy loads (0.06 s here) would never work; a user's setting wins
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    announce(f"combining {', '.join(parents) or 'the recipe ' + str(recipe_file)} by {method or 'the recipe'}"
             + (f" into {name}" if name else ""))
    hub = state.hub
    with progress_bar("combining", unit="modules") as update:
        if recipe_file:
            given = [("NAME:WEIGHT", parents), ("--method", method), ("--param", extra_params),
                     *((PARAMS[k][0].option, v) for k, v in params.items()), ("--layer-weights", layer_weights),
                     ("--drop-dora", drop_dora), ("--drop-modules-to-save", drop_modules_to_save), ("--dtype", dtype)]
            extra = [opt for opt, val in given if val is not None and val != () and val is not False]
            if extra:
                raise click.UsageError(f"--recipe fixes the combination; drop {', '.join(extra)} "
                                       "(only --name, --tag, --dry-run and --json go with it)")
            outcome = hub.combine_recipe(recipe_file, name=name, tags=tags, dry_run=dry_run, progress=update)
        else:
            if not parents:
                raise click.UsageError("name the adapters to combine as NAME:WEIGHT (or pass --recipe FILE)")
            if not method:
                raise click.UsageError(f"pass --method ({', '.join(m.name for m in BUILTIN)}, or a plugin's)")
            if not name:
                raise click.UsageError("pass --name for the new adapter")
            outcome = hub.combine([parse_weighted(p) for p in parents], method, name,
                                  _given_params(method, params, extra_params),
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
