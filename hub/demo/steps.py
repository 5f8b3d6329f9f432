"""Demo steps beyond add/scan/list: bases and checks, combining, merging."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

Echo = Callable[[str], None]


def _findings(report, echo: Echo, limit: int = 3) -> None:
    for f in report.findings[:limit]:
        echo(f"  {f.severity:<7} {f.code:<22} {f.module or ''} {f.message}")
    if len(report.findings) > limit:
        echo(f"  ... {len(report.findings) - limit} more")


def bases_and_checks(hub, root: Path, echo: Echo) -> None:
    existing = {b.name for b in hub.list_bases()}
    for kind in ("llama", "gpt2"):
        name = f"tiny-{kind}"
        if name not in existing:
            echo(f"\n$ hub base add {root / 'bases' / name}")
            base = hub.add_base(root / "bases" / name)
            echo(f"registered base {base.name}: {base.architecture}, {base.num_layers} layers, fits {base.fits} adapter(s)")
    echo("\n$ hub check llama-plain --base tiny-llama")
    report = hub.check("llama-plain", "tiny-llama")
    echo("compatible" if report.compatible else "NOT compatible")
    _findings(report, echo)
    echo("\n$ hub check gpt2-gpt2 --base tiny-llama")
    report = hub.check("gpt2-gpt2", "tiny-llama")
    echo("compatible" if report.compatible else "NOT compatible")
    _findings(report, echo)
    echo("\n$ hub list --fits tiny-llama")
    from hub.listing.filters import ListFilter

    echo("  " + ", ".join(r.name for r in hub.list(ListFilter(fits=hub.base_id("tiny-llama")))))


def combining(hub, root: Path, echo: Echo) -> None:
    from hub.errors import NotFound

    for name, parents, method, params in (
        ("plain-plus-rslora", [("llama-plain", 0.7), ("llama-rslora", -0.3)], "linear", {}),
        ("plain-plus-rslora-svd4", [("llama-plain", 0.7), ("llama-rslora", -0.3)], "svd", {"rank": 4}),
    ):
        try:
            hub.get(name)
            continue
        except NotFound:
            pass
        spec = " ".join(f"{n}:{w:g}" for n, w in parents)
        extra = "".join(f" --{k} {v}" for k, v in params.items())
        echo(f"\n$ hub combine {spec} --method {method}{extra} --name {name}")
        outcome = hub.combine(parents, method, name, params=params)
        rec = outcome.record
        echo(f"{outcome.message}: r={rec.r}, targets={','.join(rec.target_modules)}, "
             f"exact={outcome.summary.get('exact')}")


def merging(hub, root: Path, echo: Echo) -> None:
    out = root / "merged" / "tiny-llama-plain"
    if out.exists():
        return
    echo(f"\n$ hub merge --base tiny-llama llama-plain:1.0 --out {out}")
    outcome = hub.merge("tiny-llama", [("llama-plain", 1.0)], out)
    result = outcome.result or {}
    echo(f"merged into {outcome.out_dir}: {result.get('tensors_merged', result.get('tensors_touched', '?'))} "
         f"tensors changed, {result.get('bytes_written', 0):,} bytes written")
    echo("\n$ hub models")
    for model in hub.list_models():
        echo(f"  {model.name}  base={model.base_name}  adapters={[a['name'] for a in model.adapters]}")


STEPS = [bases_and_checks, combining, merging]
