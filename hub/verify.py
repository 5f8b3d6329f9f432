"""Re-hash stored files and look inside tensors for NaN/Inf (safetensors only)."""

from __future__ import annotations

import logging
from pathlib import Path

from hub.formats.safetensors_header import ADAPTER, hash_file, read_header

log = logging.getLogger(__name__)


def verify_files(entries: list[tuple[dict, Path]]) -> list[str]:
    """entries: (recorded file dict with name/size/sha256, path on disk) -> problems."""
    problems = []
    for record, path in entries:
        log.debug("verifying %s against sha256 %s", path, record["sha256"])
        if path.is_symlink():   # a linked adapter's file swapped for a link: never followed
            problems.append(f"{record['name']}: is a symbolic link now ({path}); hub never follows it")
            continue
        if not path.is_file():
            problems.append(f"{record['name']}: file is missing ({path})")
            continue
        if path.stat().st_size != record["size"]:
            problems.append(f"{record['name']}: size {path.stat().st_size} != recorded {record['size']}")
            continue
        if hash_file(path) != record["sha256"]:
            problems.append(f"{record['name']}: sha256 differs from the recorded one (file changed or corrupt)")
            continue
        if record["name"].endswith(".safetensors"):
            problems.extend(f"{record['name']}: {p}" for p in nonfinite_tensors(path))
    return problems


def nonfinite_tensors(path: Path) -> list[str]:
    import torch
    from safetensors import safe_open

    read_header(path, ADAPTER)  # validates layout (within an adapter's bounds) before the library maps it
    out = []
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            if not t.is_floating_point():
                continue
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            if nan or inf:
                out.append(f"tensor {key} has {nan} NaN and {inf} Inf values")
    return out
