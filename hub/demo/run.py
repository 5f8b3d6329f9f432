"""The demo walk-through: every step uses the same service API as the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

DEMO_ADAPTERS = ("plain", "rslora", "dora", "patterns", "modules_to_save", "embedding", "all_linear", "gpt2")


def build_demo_tree(root: Path, echo: Callable[[str], None] = print) -> Path:
    """Tiny Llama / GPT-2 bases and one adapter per kind under root/adapters."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from hub.demo.factory import ADAPTER_KINDS, make_adapter, make_base

    root.mkdir(parents=True, exist_ok=True)
    for i, kind in enumerate(DEMO_ADAPTERS):
        base_kind, kwargs = ADAPTER_KINDS[kind]
        base = root / "bases" / f"tiny-{base_kind}"
        if not (base / "config.json").exists():
            echo(f"building base  {base}")
            make_base(base_kind, base)
        adapter = root / "adapters" / f"{base_kind}-{kind.replace('_', '-')}"
        if not (adapter / "adapter_config.json").exists():
            echo(f"building adapter {adapter.name}")
            make_adapter(base, adapter, seed=i + 1, **kwargs)
    return root


def run_demo(hub, root: Path, echo: Callable[[str], None] = print) -> None:
    root = Path(root)
    build_demo_tree(root, echo)
    echo("\n$ hub scan " + str(root / "adapters"))
    result = hub.scan(root / "adapters", tags=["demo"])
    echo(f"added {len(result.added)}, skipped {len(result.skipped)}, failed {len(result.failed)}")
    echo("\n$ hub list --flag dora")
    from hub.listing.filters import ListFilter

    for rec in hub.list(ListFilter(flags=("dora",))):
        echo(f"{rec.name}  r={rec.r} alpha={rec.lora_alpha:g} targets={','.join(rec.target_modules)}")
    for step in _extra_steps():
        step(hub, root, echo)
    echo(f"\nDone. Registry: {hub.db.url} (store under {hub.home})")
    echo("Next: hub list | hub show llama-patterns | hub check llama-dora --runtime vllm | "
         "hub similar llama-plain llama-rslora | hub tui")


def _extra_steps():
    """Steps for areas that are present (check, merge, combine, ...)."""
    try:
        from hub.demo import steps
    except ImportError:
        return []
    return steps.STEPS
