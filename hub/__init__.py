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

from hub._version import DISTRIBUTION as DISTRIBUTION
from hub._version import __version__ as __version__

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (mypy and pyright honour the name)

# public name -> the module that defines it (each fact declared once: the classes stay where
# they are; this table only says where to find them)
_EXPORTS: dict[str, str] = {
    "Hub": "hub.service",
    "RemovalPlan": "hub.service",
    "ListFilter": "hub.listing.filters",
    # records and results
    "AdapterRecord": "hub.records",
    "AddResult": "hub.records",
    "ScanResult": "hub.records",
    "VerifyResult": "hub.records",
    "Finding": "hub.findings",
    "BaseRecord": "hub.results",
    "CheckReport": "hub.results",
    "FitsResult": "hub.results",
    "BatchResult": "hub.results",
    "MergedModelRecord": "hub.results",
    "MergeOutcome": "hub.services.merging",
    "CombineOutcome": "hub.services.combining",
    "SurgeryOutcome": "hub.services.surgery",
    "PullResult": "hub.services.syncing",
    "PushOutcome": "hub.services.syncing",
    "SearchHit": "hub.services.syncing",
    "RemoteState": "hub.results",
    "VersionRecord": "hub.results",
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

if TYPE_CHECKING:   # what type checkers see (`X as X`: explicit re-exports); at run time __getattr__ imports
    from hub.errors import (AlreadyExists as AlreadyExists, DatabaseError as DatabaseError, DiskFull as DiskFull,
                            HubError as HubError, Incompatible as Incompatible, IntegrityError as IntegrityError,
                            InvalidAdapter as InvalidAdapter, InvalidBaseModel as InvalidBaseModel,
                            InvalidConfig as InvalidConfig, InvalidSafetensors as InvalidSafetensors,
                            NotFound as NotFound, RemoteError as RemoteError, StoreError as StoreError,
                            UnsafeFormat as UnsafeFormat, Unsupported as Unsupported, UsageError as UsageError)
    from hub.findings import Finding as Finding
    from hub.records import (AdapterRecord as AdapterRecord, AddResult as AddResult, ScanResult as ScanResult,
                             VerifyResult as VerifyResult)
    from hub.listing.filters import ListFilter as ListFilter
    from hub.results import (BaseRecord as BaseRecord, BatchResult as BatchResult, CheckReport as CheckReport,
                             FitsResult as FitsResult, MergedModelRecord as MergedModelRecord,
                             RemoteState as RemoteState, VersionRecord as VersionRecord)
    from hub.service import Hub as Hub
    from hub.service import RemovalPlan as RemovalPlan
    from hub.services.combining import CombineOutcome as CombineOutcome
    from hub.services.merging import MergeOutcome as MergeOutcome
    from hub.services.surgery import SurgeryOutcome as SurgeryOutcome
    from hub.services.syncing import PullResult as PullResult
    from hub.services.syncing import PushOutcome as PushOutcome
    from hub.services.syncing import SearchHit as SearchHit
    from hub.services.trash import TrashEmptied as TrashEmptied
    from hub.services.trash import TrashEntry as TrashEntry


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
