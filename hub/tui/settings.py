"""What the TUI remembers between sessions: theme, sort and filter, in HUB_HOME/tui.json.

Read once at start; written (to a temporary name, then renamed) when the theme changes and
when the app closes. A missing, unreadable or hand-edited file means defaults, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hub import atomic

FILE_NAME = "tui.json"


@dataclass
class Settings:
    theme: str | None = None
    sort: str = "name"
    desc: bool = False
    filter: str = ""


def _path(home: Path) -> Path:
    return Path(home) / FILE_NAME


def load(home: Path) -> Settings:
    try:
        raw = json.loads(_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    if not isinstance(raw, dict):
        return Settings()
    out = Settings()
    if isinstance(raw.get("theme"), str):
        out.theme = raw["theme"]
    if isinstance(raw.get("sort"), str):
        out.sort = raw["sort"]
    out.desc = raw.get("desc") is True
    if isinstance(raw.get("filter"), str) and len(raw["filter"]) <= 1000:
        out.filter = raw["filter"]
    return out


def save(home: Path, settings: Settings) -> None:
    path = _path(home)
    try:
        atomic.write_text(path, json.dumps(asdict(settings), indent=2))
    except OSError:   # remembering is a convenience: a read-only home must not stop the UI
        pass
