"""torch for the merge: imported on a thread of its own, and only when needed.

``import torch`` takes 1.5-4 s of one core here, and the merge's first steps need none of it:
reading the registry, hashing the adapters, parsing the base's headers and planning every
tensor are pure Python. ``start()`` (called by `hub merge` right after it prints its first
line) imports torch on a background thread meanwhile, and ``wait()`` joins it before anything
that uses torch is imported (hub.merge's torch-dependent names go through it).

Import locks: the thread imports only torch (and what torch imports), never a hub module, so
it cannot wait on a module that the main thread holds while that waits on torch. The main
thread meanwhile imports no module that imports torch (tests/test_startup_imports.py holds that
the planning path does not).
"""

from __future__ import annotations

import importlib
import sys
import threading

_thread: threading.Thread | None = None


def start(device: str = "cpu") -> None:
    """Begin importing torch in the background (once; nothing when it is imported already);
    for a CUDA ``device`` ("cuda", "cuda:N", or "auto" where CUDA is there), start CUDA too."""
    global _thread
    if _thread is not None or "torch" in sys.modules:
        return
    _thread = threading.Thread(target=_import, args=(device,), name="hub-import-torch", daemon=True)
    _thread.start()


def _import(device: str) -> None:
    try:
        torch = importlib.import_module("torch")
        if device != "cpu" and torch.cuda.is_available():
            # the CUDA context and cuBLAS's first handle take 0.4 s and 0.2 s on an H200
            # (docs/benchmarks.md, "GPU merge"): made here, they overlap the planning
            x = torch.ones(8, 8, device="cuda" if device == "auto" else device)
            (x @ x).sum().item()
    except BaseException:  # noqa: BLE001 - the main thread's own `import torch` (or device check) raises it again
        pass


def wait() -> None:
    """Return once the background import (if one was started) has ended."""
    if _thread is not None:
        _thread.join()


def resolve_device(device: str = "auto") -> str:
    """"cpu", "cuda" or "cuda:N" for --device; "cpu" is answered without importing torch."""
    from hub.errors import UsageError

    if device == "cpu":
        return device
    if device != "auto" and device != "cuda" and not device.startswith("cuda:"):
        raise UsageError(f"unknown device {device!r}", None, "use auto, cpu or cuda")
    wait()
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UsageError("CUDA was asked for but torch sees no CUDA device", device,
                         "use --device cpu or --device auto")
    return device
