"""The one API that the CLI and the TUI call.

``Hub`` opens one context (HUB_HOME, the registry database, the store, the store lock;
hub.services.context) and builds the services on it, each a small class that is handed
the context and the other services it needs (hub/services/*). They are public as
``hub.adapters``, ``hub.checks``, ``hub.merging``, ... ; the methods below are the
services' own, reachable on ``Hub`` as well because the CLI, the TUI and library callers
use them by these names.
"""

from __future__ import annotations

import os
from typing import Any

from hub.errors import InvalidAdapter, UsageError
from hub.listing.filters import ListFilter
from hub.services.adapters import AdapterService
from hub.services.browsing import BrowsingService
from hub.services.checking import CheckingService
from hub.services.combining import CombiningService
from hub.services.context import HubContext
from hub.services.converting import ConvertingService
from hub.services.maintenance import MaintenanceService
from hub.services.merging import MergingService
from hub.services.surgery import SurgeryService
from hub.services.syncing import SyncService
from hub.services.trash import RemovalPlan, TrashService
from hub.services.versions import VersionService


class _Via:
    """A Hub method that is a service's: ``add = _Via("adapters")`` makes ``hub.add`` the bound
    method ``hub.adapters.add`` (same signature, same docstring)."""

    def __init__(self, service: str):
        self.service = service

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, hub, owner=None) -> Any:
        if hub is None:
            return self
        return getattr(getattr(hub, self.service), self.name)


class Hub:
    """The hub API: the services of one HUB_HOME (see the module docstring)."""

    def __init__(self, home: str | os.PathLike | None = None, db_url: str | None = None):
        self.ctx = ctx = HubContext.open(home, db_url)
        self.home, self.db, self.store = ctx.home, ctx.db, ctx.store
        self.checks = CheckingService(ctx)
        self.adapters = AdapterService(ctx, self.checks)
        self.versioning = VersionService(ctx, self.adapters)
        self.trash = TrashService(ctx, self.adapters, self.versioning)
        self.merging = MergingService(ctx, self.adapters)
        self.combining = CombiningService(ctx, self.adapters)
        self.converting = ConvertingService(ctx, self.adapters, self.checks)
        self.surgery = SurgeryService(ctx, self.adapters, self.merging)
        self.syncing = SyncService(ctx, self.adapters, self.versioning, self.trash, self.merging)
        self.maintenance = MaintenanceService(ctx)
        self.browsing = BrowsingService(ctx)

    def close(self) -> None:
        self.adapters.close()
        self.db.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # hub.adapters
    add = _Via("adapters")
    scan = _Via("adapters")
    list = _Via("adapters")
    count = _Via("adapters")
    get = _Via("adapters")
    adapter_dir = _Via("adapters")
    open_adapter_file = _Via("adapters")
    tag = _Via("adapters")
    rename = _Via("adapters")
    export = _Via("adapters")
    verify = _Via("adapters")
    # hub.checks
    add_base = _Via("checks")
    list_bases = _Via("checks")
    get_base = _Via("checks")
    remove_base = _Via("checks")
    base_id = _Via("checks")
    base_spec_for = _Via("checks")
    check = _Via("checks")
    check_all_bases = _Via("checks")
    check_base_all = _Via("checks")
    check_combination = _Via("checks")
    check_runtime = _Via("checks")
    # hub.versioning
    versions = _Via("versioning")
    versions_or_none = _Via("versioning")
    alias = _Via("versioning")
    # hub.trash
    remove_plan = _Via("trash")
    remove = _Via("trash")
    dependents_of = _Via("trash")
    trash_retention_days = _Via("trash")
    trash_list = _Via("trash")
    trash_restore = _Via("trash")
    trash_empty = _Via("trash")
    # hub.merging
    merge = _Via("merging")
    list_models = _Via("merging")
    get_model = _Via("merging")
    # hub.combining
    combine = _Via("combining")
    combine_recipe = _Via("combining")
    similar = _Via("combining")
    recipe_of = _Via("combining")
    # hub.converting
    export_as = _Via("converting")
    add_file = _Via("converting")
    # hub.surgery
    resize = _Via("surgery")
    fix = _Via("surgery")
    extract = _Via("surgery")
    # hub.syncing
    remote_adapters = _Via("syncing")
    pull = _Via("syncing")
    pull_update = _Via("syncing")
    push = _Via("syncing")
    search_remote = _Via("syncing")
    remote_status = _Via("syncing")
    # hub.maintenance
    doctor = _Via("maintenance")
    # hub.browsing
    children_of = _Via("browsing")


__all__ = ["Hub", "ListFilter", "RemovalPlan", "InvalidAdapter", "UsageError"]
