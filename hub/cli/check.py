"""`hub check`: does an adapter fit a base, can adapters be combined, will a runtime serve it?

Exit 0 when compatible, 1 when not, 2 on a usage error.
"""

from __future__ import annotations

import sys

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, styled
from hub.cli._progress import progress_bar
from hub.combine.registry import builtin_methods

SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def _print_findings(findings, indent: str = "  ") -> None:
    for f in findings:
        click.echo(indent, nl=False)
        styled(f.severity.ljust(7), nl=False, fg=SEVERITY_COLOURS.get(f.severity))
        where = f" {f.module}" if f.module else ""
        click.echo(f" {f.code}{where}: {f.message}")


def _verdict(ok: bool, text_ok: str, text_bad: str) -> None:
    styled("ok" if ok else "NO", nl=False, fg="green" if ok else "red")
    click.echo(f"  {text_ok if ok else text_bad}")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--base", "base", metavar="PATH_OR_NAME",
              help="Check against this base: a registered base name or a model folder. Without NAME: check every "
                   "registered adapter against it.")
@click.option("--all-bases", is_flag=True, help="List every registered base the adapter fits (by shapes).")
@click.option("--method", metavar="M",
              help=f"Check that NAMEs can be combined by method M (hub's: {', '.join(m.name for m in builtin_methods())}, "
                   "or a plugin's; PEFT's add_weighted_adapter: peft:linear, peft:svd, ...).")
@click.option("--rank", type=click.IntRange(min=1), help="With --method: the result rank K you will ask for.")
@click.option("--runtime", metavar="RUNTIME",
              help="Lint the adapter for a serving runtime: vllm, llama.cpp, ollama, peft or an installed plugin "
                   "(`hub plugins`). With --base, llama.cpp/ollama also check that base's tensor names.")
@click.option("--refresh", is_flag=True,
              help="With only --base: re-check every adapter instead of reusing verdicts stored since it was added.")
@json_option
@pass_state
def check(state, names, base, all_bases, method, rank, runtime, refresh, as_json):
    """Check NAME against a base, other adapters or a runtime, before anything breaks.

    \b
      hub check NAME --base PATH_OR_NAME      does it fit this base, module by module?
      hub check NAME --all-bases              which registered bases does it fit?
      hub check A B ... --method M            can these be combined by M?
      hub check NAME --runtime vllm           will vLLM / llama.cpp / Ollama / PEFT serve it?
      hub check --base NAME [--refresh]       every registered adapter against a base

    NAME is a registered adapter or an adapter folder. Findings carry a stable code
    (docs/findings.md), a severity, the module and what to do. Exit 0 when compatible,
    1 when not, 2 on usage errors. --json prints {"compatible", "findings"}.
    """
    if refresh and (names or not base):
        raise click.UsageError("--refresh goes with a lone --base B (the check of every adapter against B)")
    if not names:
        if base and not (all_bases or method or runtime):
            _batch(state.reader, base, refresh, as_json)
            return
        raise click.UsageError("name the adapter(s) to check (or only --base B to check every adapter against B)")
    if method:
        if base or all_bases or runtime:
            raise click.UsageError("--method checks adapters against each other; run --base/--runtime separately")
        report = state.hub.check_combination(list(names), method, rank=rank)
        _single(report, as_json, f"{report.subject} can be combined by {method}",
                f"{report.subject} cannot be combined by {method}")
        return
    if rank is not None:
        raise click.UsageError("--rank goes with --method")
    if len(names) > 1:
        raise click.UsageError("several names need --method M (or check them one at a time)")
    name = names[0]
    if all_bases:
        if base or runtime:
            raise click.UsageError("--all-bases replaces --base; run --runtime separately")
        _all_bases(state.hub, name, as_json)
        return
    reports = []
    if base:
        reports.append(state.hub.check(name, base))
    if runtime:
        from hub.compat.runtime import runtime_key

        reports.append(state.hub.check_runtime(name, runtime_key(runtime), base=base))
    if not reports:
        raise click.UsageError("say what to check against: --base, --all-bases, --method or --runtime")
    findings = [f for r in reports for f in r.findings]
    ok = all(r.compatible for r in reports)
    if as_json:
        emit_json({"compatible": ok, "findings": [f.to_dict() for f in findings]})
    else:
        for r in reports:
            what = f"base {r.against}" if r.kind == "base" else r.against
            verb = ("fits", "does not fit") if r.kind == "base" else ("can be served by", "will not be served by")
            _verdict(r.compatible, f"{r.subject} {verb[0]} {what}", f"{r.subject} {verb[1]} {what}")
            _print_findings(r.findings)
    sys.exit(0 if ok else 1)


def _single(report, as_json: bool, ok_text: str, bad_text: str) -> None:
    if as_json:
        emit_json(report.to_dict())
    else:
        _verdict(report.compatible, ok_text, bad_text)
        _print_findings(report.findings)
    sys.exit(0 if report.compatible else 1)


def _all_bases(hub, name: str, as_json: bool) -> None:
    result = hub.check_all_bases(name)
    if as_json:
        emit_json(result.to_dict())
    else:
        if not result.reports:
            stderr("hub: no bases registered; add one with `hub base add PATH`")
        for r in result.reports:
            _verdict(r.compatible, f"fits {r.against}", f"does not fit {r.against}")
            if not r.compatible:
                _print_findings([f for f in r.findings if f.severity == "error"][:3], indent="      ")
        if result.reports:
            click.echo(f"{name} fits {len(result.fitting)} of {len(result.reports)} registered base(s)")
    sys.exit(0 if result.fitting else 1)


def _batch(hub, base: str, refresh: bool, as_json: bool) -> None:
    with progress_bar(f"checking against {base}") as update:
        result = hub.check_base_all(base, refresh=refresh, progress=update)
    if as_json:
        emit_json(result.to_dict())
    else:
        for r in result.reports:
            errors = [f for f in r.findings if f.severity == "error"]
            _verdict(r.compatible, r.subject,
                     f"{r.subject}: {errors[0].code} {errors[0].module or ''}" if errors else r.subject)
        fitting = sum(r.compatible for r in result.reports)
        click.echo(f"{fitting} of {len(result.reports)} registered adapter(s) fit {result.base}")
    sys.exit(0 if result.compatible else 1)
