"""hub: a LoRA adapter hub and management registry.

The library API is what this module exports (``__all__``)::

    import hub

    with hub.Hub(home="~/.local/share/hub") as h:
        h.add("./my-lora", name="style")
        for record in h.list(hub.ListFilter(rank=16)):
            print(record.name, record.base)

Names load on first use (PEP 562): ``import hub`` alone imports neither torch,
SQLAlchemy nor textual, so the CLI starts fast and a caller pays only for what it uses.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (mypy and pyright honour the name)

from hub._version import DISTRIBUTION, __version__

# public name -> the module that defines it (each fact declared once: the classes stay where
# they are; this table only says where to find them)
_EXPORTS: dict[str, str] = {
    "Hub": "hub.service",
    "RemovalPlan": "hub.service",
    "ListFilter": "hub.registry.filters",
    # records and results
    "AdapterRecord": "hub.records",
    "AddResult": "hub.records",
    "ScanResult": "hub.records",
    "VerifyResult": "hub.records",
    "Finding": "hub.findings",
    "BaseRecord": "hub.services.checking",
    "CheckReport": "hub.services.checking",
    "FitsResult": "hub.services.checking",
    "BatchResult": "hub.services.checking",
    "MergedModelRecord": "hub.services.merging",
    "MergeOutcome": "hub.services.merging",
    "CombineOutcome": "hub.services.combining",
    "SurgeryOutcome": "hub.services.surgery",
    "PullResult": "hub.services.syncing",
    "PushOutcome": "hub.services.syncing",
    "SearchHit": "hub.services.syncing",
    "RemoteState": "hub.services.syncing",
    "VersionRecord": "hub.services.versions",
    "TrashEntry": "hub.services.trash",
    "TrashEmptied": "hub.services.trash",
    # errors
    "HubError": "hub.errors",
    "UsageError": "hub.errors",
    "NotFound": "hub.errors",
    "AlreadyExists": "hub.errors",
    "InvalidAdapter": "hub.errors",
    "InvalidConfig": "hub.errors",
    "InvalidSafetensors": "hub.errors",
    "UnsafeFormat": "hub.errors",
    "InvalidBaseModel": "hub.errors",
    "Incompatible": "hub.errors",
    "Unsupported": "hub.errors",
    "RemoteError": "hub.errors",
    "StoreError": "hub.errors",
    "DatabaseError": "hub.errors",
    "IntegrityError": "hub.errors",
    "DiskFull": "hub.errors",
}

__all__ = ["__version__", "DISTRIBUTION", *_EXPORTS]

if TYPE_CHECKING:   # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from hub.errors import (AlreadyExists, DatabaseError, DiskFull, HubError, Incompatible, IntegrityError,
                            InvalidAdapter, InvalidBaseModel, InvalidConfig, InvalidSafetensors, NotFound,
                            RemoteError, StoreError, UnsafeFormat, Unsupported, UsageError)
    from hub.findings import Finding
    from hub.records import AddResult, AdapterRecord, ScanResult, VerifyResult
    from hub.registry.filters import ListFilter
    from hub.service import Hub, RemovalPlan
    from hub.services.checking import BaseRecord, BatchResult, CheckReport, FitsResult
    from hub.services.combining import CombineOutcome
    from hub.services.merging import MergedModelRecord, MergeOutcome
    from hub.services.surgery import SurgeryOutcome
    from hub.services.syncing import PullResult, PushOutcome, RemoteState, SearchHit
    from hub.services.trash import TrashEmptied, TrashEntry
    from hub.services.versions import VersionRecord


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
