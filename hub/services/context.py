"""What every service shares: HUB_HOME, the registry database, the content-addressed store
and the store lock. Services get it (and the services they need) when they are built."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hub import paths
from hub.registry import binding
from hub.registry.db import Database
from hub.registry.locks import store_lock
from hub.registry.store import Store


@dataclass(frozen=True)
class HubContext:
    home: Path
    db: Database
    store: Store
    lock: Callable = store_lock   # lock(conn): serialise store changes inside a write transaction

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, db_url: str | None = None) -> "HubContext":
        """Open HUB_HOME's registry (migrating it when behind) and store."""
        home = Path(home).expanduser().resolve() if home else paths.home()
        db = Database(db_url or paths.default_database_url(home))
        binding.open_bound(db, paths.store_dir(home))
        return cls(home, db, Store(home))
