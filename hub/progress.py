"""The one progress protocol every long operation reports through."""

from __future__ import annotations

from typing import Callable

# progress(done, total, item): ``done`` of ``total`` units (bytes, modules, adapters, files)
# finished; ``item`` names what is being worked on ("" when nothing in particular)
Progress = Callable[[int, int, str], None]
