"""Registry rows -> the plain records front-ends get (hub.records): the one place that
knows the adapters table's column names outside the query modules."""

from __future__ import annotations

import json
from datetime import datetime

from hub.records import AdapterRecord, RawJSON


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
