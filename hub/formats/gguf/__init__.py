"""GGUF LoRA adapters for llama.cpp (and Ollama, LM Studio): the ``gguf`` format unit.

The name table (layout.py) is pure and cheap; the writer and reader import the ``gguf``
package, numpy and torch only when a file is actually written or read.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hub.formats.gguf.layout import OUTTYPES
from hub.formats.unit import ExportJob, FormatUnit, ImportResult

log = logging.getLogger(__name__)


def write(job: ExportJob, tmp: Path) -> dict:
    from hub.formats.gguf.writer import write_gguf

    log.debug("GGUF export of %s (%s) to %s", job.adapter_name, job.options.get("outtype") or "f32", tmp)
    return write_gguf(job.adapter_dir, job.adapter, job.base, tmp, outtype=job.options.get("outtype") or "f32",
                      name=job.adapter_name, progress=job.progress)


def read(path: Path, base, dest: Path) -> ImportResult:
    from hub.formats.gguf.reader import read_lora

    log.debug("GGUF import of %s against base %s into %s", path, base.name, dest)
    details = read_lora(path, base, dest)
    return ImportResult(base.name, details)


FORMAT = FormatUnit(
    "gguf", "llama.cpp GGUF LoRA file (llama.cpp --lora, Ollama ADAPTER, LM Studio)", "file",
    needs_base=True, outtypes=OUTTYPES, write=write, read=read, suffixes=(".gguf",), runtime="llama.cpp")
