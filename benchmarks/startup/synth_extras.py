"""What the reading commands beyond `hub list` read, added to a synthetic registry
(benchmarks/list/synth_registry.py): a registered Llama-2-7B-shaped base with a stored
verdict for every adapter (`hub check --base`, `hub base list/show`), merged models with
lineage (`hub models`), a second version and an alias of one name (`hub versions`), and
recorded remotes (`hub status --no-check`). Rows go in through hub.registry.schema's
tables, as `hub base add`, `hub merge`, `hub add --new-version`, `hub alias` and
`hub pull` would write them (SQLAlchemy refuses a row whose keys do not match)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

BASE = "llama-2-7b"
LAYERS, HIDDEN, FFN, VOCAB = 32, 4096, 11008, 32000


def _shapes() -> dict:
    shapes = {"model.embed_tokens.weight": [[VOCAB, HIDDEN], "F16"], "lm_head.weight": [[VOCAB, HIDDEN], "F16"],
              "model.norm.weight": [[HIDDEN], "F16"]}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"{p}.self_attn.{proj}.weight"] = [[HIDDEN, HIDDEN], "F16"]
        shapes[f"{p}.mlp.gate_proj.weight"] = [[FFN, HIDDEN], "F16"]
        shapes[f"{p}.mlp.up_proj.weight"] = [[FFN, HIDDEN], "F16"]
        shapes[f"{p}.mlp.down_proj.weight"] = [[HIDDEN, FFN], "F16"]
        for norm in ("input_layernorm", "post_attention_layernorm"):
            shapes[f"{p}.{norm}.weight"] = [[HIDDEN], "F16"]
    return dict(sorted(shapes.items()))


def add_extras(home: Path, models: int = 20, remotes: int = 50) -> str:
    """Add the rows; returns the name that has two versions."""
    from sqlalchemy import insert, select, update

    from hub import paths
    from hub.registry.db import Database
    from hub.registry.schema import (
        adapter_aliases, adapter_base_fits, adapters, base_models, lineage, merged_models,
    )
    from hub.registry.schema import remotes as remotes_table

    db = Database(paths.default_database_url(home))
    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": HIDDEN,
              "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "intermediate_size": FFN,
              "num_attention_heads": 32, "num_key_value_heads": 32, "torch_dtype": "float16"}
    shapes = json.dumps(_shapes())
    with db.write() as conn:
        base_id = conn.execute(insert(base_models).values(
            name=BASE, path=f"/models/{BASE}", architecture="LlamaForCausalLM", model_type="llama", dtype="float16",
            vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=LAYERS, tie_word_embeddings=False,
            shape_signature=hashlib.sha256(shapes.encode()).hexdigest(), shapes_json=shapes,
            config_json=json.dumps(config, sort_keys=True), size_bytes=13_476_839_424, source_kind="local",
            created_at=now)).inserted_primary_key[0]
        rows = conn.execute(select(adapters.c.id, adapters.c.name, adapters.c.base_model, adapters.c.sha256)
                            .order_by(adapters.c.id)).all()
        error = [{"code": "SHAPE_MISMATCH", "severity": "error", "module": "model.layers.0.self_attn.q_proj",
                  "message": "the adapter's in_features do not match the base's"}]
        conn.execute(insert(adapter_base_fits), [
            {"adapter_id": r.id, "base_id": base_id, "compatible": "Llama-2-7b" in r.base_model,
             "findings_json": "[]" if "Llama-2-7b" in r.base_model else json.dumps(error), "checked_at": now}
            for r in rows])
        for i in range(models):
            parents = rows[i * 2:i * 2 + 2]
            model_id = conn.execute(insert(merged_models).values(
                name=f"merged-{i:03d}", path=f"/models/merged-{i:03d}", base_id=base_id, base_name=BASE,
                base_path=f"/models/{BASE}", dtype="float16", size_bytes=13_476_839_424, num_shards=3,
                recipe_json=json.dumps({"device": "cpu", "dtype": "keep"}), hub_version="0.1.0",
                created_at=now + timedelta(hours=i))).inserted_primary_key[0]
            conn.execute(insert(lineage), [
                {"child_type": "model", "child_id": model_id, "parent_type": "base", "parent_id": base_id,
                 "parent_name": BASE, "parent_sha256": None, "parent_version": None, "weight": None, "position": 0},
                *({"child_type": "model", "child_id": model_id, "parent_type": "adapter", "parent_id": p.id,
                   "parent_name": p.name, "parent_sha256": p.sha256, "parent_version": 1, "weight": 0.5,
                   "position": k + 1} for k, p in enumerate(parents))])
        conn.execute(insert(remotes_table), [
            {"adapter_id": r.id, "direction": "pull", "repo_id": f"team/{r.name}", "revision": "main",
             "commit": hashlib.sha1(r.name.encode()).hexdigest(), "remote_commit": None, "updated_at": now}
            for r in rows[:remotes]])
        # a second version of the first name, aliased
        first = conn.execute(select(adapters).where(adapters.c.id == rows[0].id)).first()._asdict()
        second = {**first, "id": None, "version": 2, "latest": True,
                  "sha256": hashlib.sha256(first["sha256"].encode()).hexdigest(), "created_at": now,
                  "updated_at": now}
        second.pop("id")
        conn.execute(update(adapters).where(adapters.c.id == rows[0].id).values(latest=False))
        conn.execute(insert(adapters).values(**second))
        conn.execute(insert(adapter_aliases).values(name=first["name"], alias="prod", adapter_id=rows[0].id,
                                                    updated_at=now))
    db.dispose()
    return rows[0].name
