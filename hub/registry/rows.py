"""Registry rows -> the plain records front-ends get (hub.records, hub.results): the one
place that knows the tables' column names outside the query modules."""

from __future__ import annotations

import json
from datetime import datetime

from hub.records import AdapterRecord, RawJSON
from hub.results import BaseRecord, MergedModelRecord


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value is not None else ""


def adapter_from_row(row, tags=(), files=(), lineage=(), remotes=(), base_name=None, full=True,
                     raw: bool = False, aliases=()) -> AdapterRecord:
    """``raw``: JSON columns stay RawJSON text (for printing only, see RawJSON)."""
    m = row if isinstance(row, dict) else row._mapping   # fastread's rows are dicts already
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


def base_record(row, fits_count: int = 0) -> BaseRecord:
    return BaseRecord(
        id=row.id, name=row.name, path=row.path, architecture=row.architecture, model_type=row.model_type,
        dtype=row.dtype, vocab_size=row.vocab_size, hidden_size=row.hidden_size, num_layers=row.num_layers,
        tie_word_embeddings=bool(row.tie_word_embeddings),
        quantization=json.loads(row.quantization_json) if row.quantization_json else None,
        quant_scheme=json.loads(row.quant_scheme_json) if row.quant_scheme_json else None,
        shape_signature=row.shape_signature, size_bytes=row.size_bytes or 0,
        num_tensors=len(json.loads(row.shapes_json)),
        source={k: v for k, v in (("kind", row.source_kind), ("repo", row.source_repo),
                                  ("revision", row.source_revision), ("commit", row.source_commit)) if v},
        created_at=row.created_at.isoformat() if row.created_at else "", fits=fits_count)


def model_record(row, parents: list[dict]) -> MergedModelRecord:
    return MergedModelRecord(
        id=row.id, name=row.name, path=row.path, base_name=row.base_name, base_path=row.base_path, dtype=row.dtype,
        size_bytes=row.size_bytes or 0, num_shards=row.num_shards or 1, hub_version=row.hub_version,
        created_at=row.created_at.isoformat() if row.created_at else "",
        recipe=json.loads(row.recipe_json) if row.recipe_json else {}, lineage=parents,
        drift=json.loads(row.drift_json) if row.drift_json else None)
