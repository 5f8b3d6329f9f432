"""Tables, sizes and JSON for the terminal."""

from __future__ import annotations

import json
import sys

import click

from hub.display import fmt_num, human_size  # noqa: F401 - the CLI's commands import them from here
from hub.records import RawJSON, json_parts
from hub.terminal_text import inert, raw_stream


def styled(text: str, file=None, nl: bool = True, **style) -> None:
    """Echo ``text`` made inert, then styled (bold, fg=...) when the stream is a terminal.
    The styling codes go to the raw terminal stream, past the CLI's InertWriter."""
    stream = file or sys.stdout
    line = inert(text, newlines=True)
    if style and stream.isatty():
        click.echo(click.style(line, **style), file=raw_stream(stream), color=True, nl=nl)
    else:
        click.echo(line, file=stream, nl=nl)


def emit_json(data) -> None:
    """Objects print indented; arrays print one compact item per line (one JSON document
    all the same). json's C encoder only runs without ``indent``: indenting 1,000 adapter
    records with their module maps took ~10 s in the pure-Python encoder."""
    if isinstance(data, list) and data:
        # in pieces, straight to the stream: click.echo of one joined string took 0.15 s
        # over the 20 MB of 1,000 records
        out = sys.stdout
        for i, item in enumerate(data):
            out.write(",\n" if i else "[\n")
            if isinstance(item, dict):
                for part in json_parts(item):
                    _write_json(out, part)
            else:
                _write_json(out, json.dumps(item, default=str))
        out.write("\n]\n")
        out.flush()
    else:
        click.echo(json.dumps(data, indent=2, sort_keys=False,
                              default=lambda o: o.value() if isinstance(o, RawJSON) else str(o)))


def _write_json(out, text: str) -> None:
    """JSON text from json.dumps is ASCII with every C0 control escaped: only DEL could
    steer a terminal, so such text skips the InertWriter's scan (0.3 s over 20 MB)."""
    if text.isascii() and "\x7f" not in text:
        raw_stream(out).write(text)
    else:
        out.write(text)


def table(headers: list[str], rows: list[list], max_widths: dict[int, int] | None = None) -> None:
    if not rows:
        return
    cells = [[inert(c) for c in row] for row in rows]  # one line per row, whatever a cell holds
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for i, w in (max_widths or {}).items():
        widths[i] = min(widths[i], w)

    def clip(text, width):
        return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

    styled("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), bold=True)
    for r in cells:
        click.echo("  ".join(clip(c, w).ljust(w) for c, w in zip(r, widths)).rstrip())
