"""Plain dataclasses the service returns to front-ends (no SQLAlchemy, no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True)
class AdapterRecord:
    id: int
    name: str
    sha256: str
    base_model: str | None
    base: str | None                # registered base resolved by shapes, if any
    peft_type: str
    task_type: str | None
    r: int
    lora_alpha: float
    scaling: float
    use_rslora: bool
    use_dora: bool
    fan_in_fan_out: bool
    lora_bias: bool
    has_embedding_lora: bool
    target_modules: list[str]
    modules_to_save: list[str]
    num_layers: int
    num_modules: int
    param_count: int
    size_bytes: int
    dtype: str | None
    tags: list[str]
    storage: str
    path: str | None
    source: dict
    created_at: str
    version: int = 1                # 1, 2, ... within the name (hub.refs: NAME@VERSION)
    aliases: list[str] = field(default_factory=list)   # NAME@ALIAS names pointing at this version
    modules: dict[str, dict] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    saved_tensors: dict[str, list] = field(default_factory=dict)
    recipe: dict | None = None
    lineage: list[dict] = field(default_factory=list)
    remotes: list[dict] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        out = []
        if self.use_rslora:
            out.append("rslora")
        if self.use_dora:
            out.append("dora")
        if self.has_embedding_lora:
            out.append("embed")
        if self.modules_to_save:
            out.append("mts")
        if self.lora_bias:
            out.append("bias")
        if self.fan_in_fan_out:
            out.append("fifo")
        return out

    def to_dict(self) -> dict:
        # A shallow copy: the nested values are plain JSON data already, and asdict's deep
        # copy of every module map took seconds for `hub list --json` on 1,000 adapters.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RawJSON:
    """A JSON document kept as the text the registry stores, written out unparsed by
    json_text. Only records built with ``adapter_from_row(..., raw=True)`` hold these,
    for printing (`hub list --json`): 1,000 adapters carry ~20 MB of module maps, and
    parsing them only to encode them again took longer than the whole command may."""

    text: str

    def value(self):
        return json.loads(self.text)


def json_parts(doc: dict):
    """The text of ``json.dumps(doc, default=str)`` in pieces, with RawJSON values written
    as their text (pieces, so that 20 MB of module maps are not copied into one string)."""
    yield "{"
    run: dict = {}
    sep = ""
    for key, value in doc.items():
        if isinstance(value, RawJSON):
            if run:
                yield sep + json.dumps(run, default=str)[1:-1]
                run, sep = {}, ", "
            yield f"{sep}{json.dumps(key)}: "
            # stored text is ASCII when hub wrote it; anything else (C1 controls, bidi marks
            # from another writer) is re-encoded so JSON output stays \u-escaped ASCII
            yield value.text if value.text.isascii() else json.dumps(value.value())
            sep = ", "
        else:
            run[key] = value
    if run:
        yield sep + json.dumps(run, default=str)[1:-1]
    yield "}"


def json_text(doc: dict) -> str:
    """``json.dumps(doc, default=str)``, with RawJSON values written as their text."""
    return "".join(json_parts(doc))


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value is not None else ""


def adapter_from_row(row, tags=(), files=(), lineage=(), remotes=(), base_name=None, full=True,
                     raw: bool = False, aliases=()) -> AdapterRecord:
    """``raw``: JSON columns stay RawJSON text (for printing only, see RawJSON)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    # Only what a summary shows is parsed unless ``full``; rows from list_query(details=False)
    # have no modules/findings/saved_tensors columns at all.
    config = json.loads(m["config_json"]) if (full and not raw) or m["has_modules_to_save"] else {}
    load = RawJSON if raw else json.loads
    return AdapterRecord(
        id=m["id"], name=m["name"], sha256=m["sha256"], base_model=m["base_model"], base=base_name,
        peft_type=m["peft_type"], task_type=m["task_type"], r=m["r"], lora_alpha=m["lora_alpha"],
        scaling=m["scaling"], use_rslora=bool(m["use_rslora"]), use_dora=bool(m["use_dora"]),
        fan_in_fan_out=bool(m["fan_in_fan_out"]), lora_bias=bool(m["lora_bias"]),
        has_embedding_lora=bool(m["has_embedding_lora"]),
        target_modules=[t for t in m["target_modules"].split(",") if t],
        modules_to_save=list(config.get("modules_to_save") or []),
        num_layers=m["num_layers"], num_modules=m["num_modules"], param_count=m["param_count"],
        size_bytes=m["size_bytes"], dtype=m["dtype"], tags=sorted(tags), storage=m["storage"], path=m["path"],
        source={
            "kind": m["source_kind"], "path": m["source_path"], "repo": m["source_repo"],
            "revision": m["source_revision"], "commit": m["source_commit"], "subfolder": m["source_subfolder"],
        },
        created_at=_iso(m["created_at"]),
        version=m["version"] if "version" in m else 1, aliases=list(aliases),
        modules=load(m["modules_json"]) if "modules_json" in m else {},
        config=(RawJSON(m["config_json"]) if raw else config) if full else {},
        files=list(files),
        findings=load(m["findings_json"]) if full and "findings_json" in m else [],
        saved_tensors=load(m["saved_tensors_json"]) if full and "saved_tensors_json" in m else {},
        recipe=load(m["recipe_json"]) if m["recipe_json"] else None,
        lineage=list(lineage),
        remotes=list(remotes),
    )


@dataclass(frozen=True)
class AddResult:
    status: str          # added | exists
    record: AdapterRecord
    message: str = ""


@dataclass
class ScanResult:
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (path, one-line error)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "failed": [{"path": p, "error": e} for p, e in self.failed],
        }


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    problems: list[str]

    def to_dict(self) -> dict:
        return asdict(self)
