"""What a format plugin provides (entry-point group ``hub.formats``, see hub.plugins).

A format writes a registered adapter somewhere else (`hub export NAME OUT --format F`) and,
optionally, reads a file back into a PEFT adapter folder (`hub add FILE --base BASE`).
The service resolves names, bases and the output path, runs the write-target guard, and
hands the unit a temporary path that it renames into place afterwards; units only read
their inputs and write that one temporary path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from hub.progress import Progress


@dataclass(frozen=True)
class ExportJob:
    adapter_dir: Path                 # a PEFT folder (adapter_config.json + adapter_model.safetensors)
    adapter_name: str
    adapter: object                   # hub.compat.AdapterSpec
    base: object | None               # hub.compat.BaseSpec, or None when the format needs none
    target: Path                      # the final path the user asked for (a file or a folder)
    options: Mapping = field(default_factory=dict)   # outtype, from_model, ...
    progress: Progress | None = None


@dataclass(frozen=True)
class ImportResult:
    base_model: str | None            # what adapter_config.json's base_model_name_or_path was set to
    details: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class FormatUnit:
    name: str
    summary: str
    output: str                                   # "file" or "folder": what OUT is
    needs_base: bool = False
    outtypes: tuple[str, ...] = ()                # accepted --outtype values; the first is the default
    # (job, temporary path) -> summary dict: an empty folder for "folder" formats, a file
    # path that does not exist yet for "file" formats
    write: Callable[[ExportJob, Path], dict | None] | None = None
    read: Callable[[Path, object, Path], ImportResult] | None = None  # (file, BaseSpec, empty folder)
    suffixes: tuple[str, ...] = ()                # file suffixes `hub add` recognises as this format
    runtime: str | None = None                    # the hub.runtimes rules that gate the export
