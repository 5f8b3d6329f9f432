"""Untrusted text made inert for a terminal.

Adapter configs, tensor names, Hub metadata and error text from servers or
exceptions can hold escape sequences (clear screen, window title, hyperlinks),
carriage returns that overwrite a line, and bidi overrides that reorder what a
reader sees. Everything that reaches a terminal passes through ``inert``: such
characters are shown escaped (``\\x1b``, ``\\u202e``), the rest is unchanged.
The CLI, the TUI and error lines all use this one function.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, soft hyphen, Arabic letter mark,
# Mongolian vowel separator, zero-width and directional marks, line/paragraph separators,
# bidi embeddings/overrides/isolates, invisible operators, BOM, interlinear annotations,
# surrogates, private use and the invisible tag characters.
_UNSAFE_CLASS = (r"\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                 r"\u2060-\u206f\ud800-\uf8ff\ufeff\ufff9-\ufffb\U000e0000-\U000e007f")
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
_UNSAFE_OR_NEWLINE = re.compile(f"[\\t\\n{_UNSAFE_CLASS}]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text, *, newlines: bool = False) -> str:
    """``text`` (any object, via str) with every character that could steer a terminal
    escaped. Tab and newline are escaped too unless ``newlines`` (one-line fields:
    table cells, status bars, error lines)."""
    text = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE if newlines else _UNSAFE_OR_NEWLINE
    if pattern.search(text) is None:   # the common case, at C speed
        return text
    return pattern.sub(_escape, text)


def is_inert(text: str, *, newlines: bool = False) -> bool:
    return (_UNSAFE if newlines else _UNSAFE_OR_NEWLINE).search(text) is None


class InertWriter:
    """A text stream that writes ``inert(text, newlines=True)`` to the stream it wraps.

    Installed over stdout and stderr while a CLI command runs, so that no output path
    (a table cell, an f-string, a library's warning) can emit raw control codes. hub's
    own styling (bold headers, coloured verdicts) is written to ``raw`` after its text
    was made inert. ``buffer`` is hidden on purpose: click would otherwise write
    around this wrapper to the binary stream.
    """

    def __init__(self, stream):
        self.raw = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("InertWriter takes text")
        return self.raw.write(inert(text, newlines=True))

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def __getattr__(self, name):
        if name == "buffer":
            raise AttributeError(name)
        return getattr(self.raw, name)


def raw_stream(stream):
    """The terminal stream under an InertWriter (for hub's own styling), else ``stream``."""
    return stream.raw if isinstance(stream, InertWriter) else stream
