"""Extension points: formats, runtimes and combination methods as entry points.

Three entry-point groups, ``hub.formats``, ``hub.runtimes`` and ``hub.methods``; each
entry names a ``module:attribute`` that is imported only when that one plugin is used.
hub's own units are declared in :data:`BUILTIN` (and, identically, under
``[project.entry-points]`` in pyproject.toml, so an installed hub advertises them like any
other distribution; a test keeps the two equal). Discovery reads the table and the
installed distributions' metadata without importing any plugin module, so ``hub plugins``
and every command that uses no plugin stay fast.

What each group's attribute must be:
- hub.formats: a :class:`hub.formats.unit.FormatUnit`
- hub.runtimes: a :class:`hub.compat.runtime.RuntimeRules`
- hub.methods: a :class:`hub.combine.declare.Method` (a declaration: it loads without torch)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from hub.errors import UsageError

GROUPS = {"hub.formats": "format", "hub.runtimes": "runtime", "hub.methods": "method"}
BUILTIN_ORIGIN = "hub (built-in)"

# group -> name -> "module:attribute"
BUILTIN: dict[str, dict[str, str]] = {
    "hub.formats": {
        "peft": "hub.formats.peft_folder:FORMAT",
        "gguf": "hub.formats.gguf:FORMAT",
        "ollama": "hub.formats.ollama:FORMAT",
    },
    "hub.runtimes": {
        "vllm": "hub.compat.runtime:VLLM",
        "llama.cpp": "hub.compat.runtime:LLAMA_CPP",
        "ollama": "hub.compat.runtime:OLLAMA",
        "peft": "hub.compat.runtime:PEFT",
    },
    "hub.methods": {
        "cat": "hub.combine.methods:CAT",
        "linear": "hub.combine.methods:LINEAR",
        "svd": "hub.combine.methods:SVD",
        "ties": "hub.combine.methods:TIES",
        "dare_linear": "hub.combine.methods:DARE_LINEAR",
        "dare_ties": "hub.combine.methods:DARE_TIES",
        "magnitude_prune": "hub.combine.methods:MAGNITUDE_PRUNE",
    },
}


@dataclass(frozen=True)
class Plugin:
    group: str
    name: str
    value: str            # "module:attribute"
    origin: str           # the distribution that declares it ("name version"), or BUILTIN_ORIGIN

    @property
    def kind(self) -> str:
        return GROUPS[self.group]

    @property
    def builtin(self) -> bool:
        return self.origin == BUILTIN_ORIGIN

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin is one clear line
            raise UsageError(f"{self.kind} plugin {self.name!r} from {self.origin} failed to load: "
                             f"{type(exc).__name__}: {exc}", self.value,
                             "fix or uninstall that package (see `hub plugins`)") from None
        return obj

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "group": self.group, "origin": self.origin,
                "value": self.value, "builtin": self.builtin}


def _installed(group: str) -> list[Plugin]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=group):
        if ep.value.startswith("hub."):   # hub's own metadata (BUILTIN), whatever its distribution's name
            continue
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        origin = f"{dist_name} {dist.version}" if dist is not None else "unknown distribution"
        found.append(Plugin(group, ep.name, ep.value, origin))
    return found


def plugins(group: str | None = None) -> list[Plugin]:
    """Every plugin of ``group`` (or of all groups), built-ins first; nothing is imported.
    A third-party entry cannot replace a built-in of the same name (it is listed, shadowed)."""
    groups = [group] if group else list(GROUPS)
    out = []
    for g in groups:
        if g not in GROUPS:
            raise ValueError(f"unknown plugin group {g!r}")
        out += [Plugin(g, name, value, BUILTIN_ORIGIN) for name, value in BUILTIN[g].items()]
        out += _installed(g)
    return out


def names(group: str) -> list[str]:
    """Usable names of ``group``: built-ins, then third-party names in sorted order."""
    seen: dict[str, None] = {}
    for p in plugins(group):
        seen.setdefault(p.name, None)
    return list(seen)


def find(group: str, name: str) -> Plugin:
    """The plugin ``name`` of ``group`` (a built-in wins over a third-party namesake)."""
    for p in plugins(group):
        if p.name == name:
            return p
    kind = GROUPS[group]
    raise UsageError(f"unknown {kind} {name!r}", f"--{kind}",
                     f"use one of: {', '.join(names(group))} (installed plugins: `hub plugins`)")


def load(group: str, name: str) -> Any:
    return find(group, name).load()
