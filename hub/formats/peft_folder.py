"""The PEFT folder format unit: what `hub export NAME DIR` writes (the default)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.formats.unit import ExportJob, FormatUnit


def write(job: ExportJob, tmp: Path) -> None:
    for f in sorted(job.adapter_dir.iterdir()):
        if f.is_file():
            shutil.copyfile(f, tmp / f.name)   # real copies: edits never reach the store


FORMAT = FormatUnit("peft", "PEFT folder (adapter_config.json + adapter_model.safetensors)", "folder", write=write)
