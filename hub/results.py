"""Result types of the reading operations (hub.registry.reading), for every front-end.

Plain dataclasses; hub.registry.rows builds them from registry rows (this module knows no
column names), so a reading command can build them from the stdlib sqlite3 path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from hub.findings import Finding, fits


@dataclass(frozen=True)
class BaseRecord:
    id: int
    name: str
    path: str | None
    architecture: str | None
    model_type: str | None
    dtype: str | None
    vocab_size: int | None
    hidden_size: int | None
    num_layers: int | None
    tie_word_embeddings: bool
    quantization: dict | None
    quant_scheme: dict | None            # bitsandbytes: method, bits, block size, double quant, dtypes
    shape_signature: str
    size_bytes: int
    num_tensors: int
    source: dict
    created_at: str
    fits: int = 0                        # registered adapters that fit it
    modules: dict[str, dict] = field(default_factory=dict)   # filled by get_base

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if not self.modules:
            d.pop("modules")
        return d


@dataclass(frozen=True)
class CheckReport:
    """One verdict. ``subject`` is the adapter (or adapters) checked, ``against`` the base,
    method or runtime."""
    kind: str                            # base | adapters | runtime
    subject: str
    against: str
    findings: list[Finding]

    @property
    def compatible(self) -> bool:
        return fits(self.findings)

    def to_dict(self) -> dict:
        return {"compatible": self.compatible, "findings": finding_dicts(self.findings)}


@dataclass(frozen=True)
class FitsResult:
    """An adapter against every registered base (``hub check NAME --all-bases``)."""
    adapter: str
    reports: list[CheckReport]

    @property
    def fitting(self) -> list[str]:
        return [r.against for r in self.reports if r.compatible]

    def to_dict(self) -> dict:
        return {"compatible": bool(self.fitting), "findings": [], "fits": self.fitting,
                "bases": [{"base": r.against, **r.to_dict()} for r in self.reports]}


@dataclass(frozen=True)
class BatchResult:
    """Every registered adapter against one base (``hub check --base B``)."""
    base: str
    reports: list[CheckReport]

    @property
    def compatible(self) -> bool:
        return all(r.compatible for r in self.reports)

    def to_dict(self) -> dict:
        return {"compatible": self.compatible, "findings": [], "base": self.base,
                "fits": [r.subject for r in self.reports if r.compatible],
                "adapters": [{"adapter": r.subject, **r.to_dict()} for r in self.reports]}


def finding_dicts(findings: list[Finding]) -> list[dict]:
    # plain dicts: dataclasses.asdict is ~10x slower, and a batch handles thousands
    return [{"code": f.code, "severity": f.severity, "module": f.module, "message": f.message} for f in findings]


@dataclass(frozen=True)
class MergedModelRecord:
    id: int
    name: str
    path: str
    base_name: str | None
    base_path: str | None
    dtype: str | None
    size_bytes: int
    num_shards: int
    hub_version: str | None
    created_at: str
    recipe: dict = field(default_factory=dict)
    lineage: list[dict] = field(default_factory=list)
    drift: dict | None = None       # quantized merges: per-module drift report (hub.merge.quantized.Drift)

    @property
    def exists(self) -> bool:
        return Path(self.path).is_dir()

    @property
    def adapters(self) -> list[dict]:
        return [p for p in self.lineage if p["type"] == "adapter"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["exists"] = self.exists
        d["adapters"] = [{"name": p["name"], "weight": p["weight"], "sha256": p["sha256"]} for p in self.adapters]
        return d


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: int
    sha256: str
    commit: str              # the 40-hex id `hub serve` shows for this version
    created_at: str
    source: dict
    aliases: list[str]
    latest: bool
    size_bytes: int
    tags: list[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RemoteState:
    name: str
    direction: str
    repo_id: str
    revision: str
    subfolder: str | None
    commit: str | None           # what the registry has
    remote_commit: str | None    # where the revision points now (None: gone or not checked)
    state: str                   # up-to-date | moved | gone | unchecked

    def to_dict(self) -> dict:
        return dict(self.__dict__)
