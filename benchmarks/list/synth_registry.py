"""Fill a registry with N synthetic but realistic adapter rows, fast.

Rows are what `hub add` would store for the generated adapters of
benchmarks/scan/gen_adapters.py (Llama-family bases, 2-7 target modules, ranks
4-128, per-module maps of 32-224 entries, configs as PEFT writes them), with
names, tags, descriptions and dates spread the way a team's registry would be.
They go in through hub.registry.schema's tables in batched executemany calls in
one transaction, so 100,000 rows take seconds rather than the ~15 minutes of
100,000 `hub add`s; SQLAlchemy refuses a row whose keys do not match the table.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scan"))

from gen_adapters import BASES, CONFIG_TEMPLATE, DTYPES, RANKS, TARGET_SETS, Spec  # noqa: E402

TASKS = ("sql", "chat", "code", "math", "summarize", "translate-de", "translate-fr", "medical", "legal",
         "support", "json-mode", "tool-use", "rag", "sentiment", "ner", "poetry", "reviews", "finance")
TAGS = ("prod", "staging", "experimental", "baseline", "v1", "v2", "v3", "eval-passed", "eval-failed",
        "team-nlp", "team-search", "team-ads", "archived", "customer-a", "customer-b", "distilled",
        "long-context", "safety", "multilingual", "small")
BATCH = 2_000


def _short(base: str) -> str:
    return base.split("/")[-1].lower().replace(".", "-")


def synth_rows(count: int, seed: int = 0):
    """Yield (adapter row, targets, tags, files) for `count` adapters."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    bases = list(BASES)
    for i in range(count):
        spec = Spec(rng.choice(bases), rng.choice(TARGET_SETS), rng.choice(RANKS),
                    rng.choices(list(DTYPES), weights=(6, 3, 1))[0],
                    use_rslora=rng.random() < 0.1, use_dora=rng.random() < 0.05)
        alpha = float(rng.choice((spec.r, 2 * spec.r, 16, 32)))
        scaling = alpha / (spec.r ** 0.5 if spec.use_rslora else spec.r)
        modules = {path: {"r": spec.r, "alpha": alpha, "in_features": fin, "out_features": fout, "kind": "linear",
                          "scaling": scaling, "dora": spec.use_dora, "lora_bias": False}
                   for path, fin, fout in spec.modules()}
        task = rng.choice(TASKS)
        name = f"{_short(spec.base)}-{task}-r{spec.r}-{i:06d}"
        config = dict(CONFIG_TEMPLATE, base_model_name_or_path=spec.base, r=spec.r, lora_alpha=alpha,
                      target_modules=sorted(spec.targets), use_rslora=spec.use_rslora, use_dora=spec.use_dora)
        config_text = json.dumps(config, sort_keys=True)
        weights = spec.nbytes()
        sha_config = hashlib.sha256(config_text.encode()).hexdigest()
        sha_weights = hashlib.sha256(f"weights-{seed}-{i}".encode()).hexdigest()
        stamp = start + timedelta(seconds=rng.randrange(365 * 86400))
        params = sum(spec.r * (fin + fout) for _, fin, fout in spec.modules())
        row = dict(
            id=i + 1, name=name, sha256=hashlib.sha256(f"{sha_config}{sha_weights}".encode()).hexdigest(),
            base_model=spec.base, base_id=None, peft_type="LORA", task_type="CAUSAL_LM", r=spec.r,
            lora_alpha=alpha, scaling=scaling, use_rslora=spec.use_rslora, use_dora=spec.use_dora,
            fan_in_fan_out=False, lora_bias=False, has_embedding_lora=False, has_modules_to_save=False,
            target_modules=",".join(sorted(spec.targets)), num_layers=BASES[spec.base][2],
            num_modules=len(modules), param_count=params, size_bytes=weights + len(config_text),
            dtype=spec.dtype, config_json=config_text, modules_json=json.dumps(modules),
            saved_tensors_json="{}", findings_json="[]", storage="store", path=None,
            source_kind="local", source_path=f"/data/runs/{task}/{name}", source_repo=None,
            source_revision=None, source_commit=None, source_subfolder=None, recipe_json=None,
            # hub stores a description for combined adapters and on request: about one in five
            description=f"{task} fine-tune of {spec.base} (r={spec.r}, {len(spec.targets)} targets)"
            if rng.random() < 0.2 else None,
            created_at=stamp, updated_at=stamp,
        )
        tags = sorted(set(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3)))))
        files = [("adapter_config.json", len(config_text), sha_config),
                 ("adapter_model.safetensors", weights, sha_weights)]
        yield row, sorted(spec.targets), tags, files


def build_registry(home: Path, count: int, seed: int = 0) -> None:
    """Create HUB_HOME=home with `count` synthetic adapters (replacing any registry there)."""
    from sqlalchemy import insert

    from hub import paths
    from hub.registry.db import Database
    from hub.registry.schema import adapter_files, adapter_tags, adapter_targets, adapters

    home.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (home / f"registry.db{suffix}").unlink(missing_ok=True)
    db = Database(paths.default_database_url(home))
    db.ensure_schema()
    batch: dict[str, list] = {"adapters": [], "targets": [], "tags": [], "files": []}

    def flush(conn):
        if batch["adapters"]:
            conn.execute(insert(adapters), batch["adapters"])
            conn.execute(insert(adapter_targets), batch["targets"])
            if batch["tags"]:
                conn.execute(insert(adapter_tags), batch["tags"])
            conn.execute(insert(adapter_files), batch["files"])
        for rows in batch.values():
            rows.clear()

    with db.write() as conn:
        for row, targets, tags, files in synth_rows(count, seed):
            aid = row["id"]
            batch["adapters"].append(row)
            batch["targets"].extend({"adapter_id": aid, "target": t} for t in targets)
            batch["tags"].extend({"adapter_id": aid, "tag": t} for t in tags)
            batch["files"].extend({"adapter_id": aid, "name": n, "size": s, "sha256": h} for n, s, h in files)
            if len(batch["adapters"]) >= BATCH:
                flush(conn)
        flush(conn)
        if db.dialect == "postgresql":  # explicit ids do not move the serial sequence there
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('adapters', 'id'), "
                                 "(SELECT COALESCE(MAX(id), 1) FROM adapters))")
    db.dispose()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Build a synthetic registry at HOME.")
    ap.add_argument("home", type=Path)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    build_registry(a.home, a.count, a.seed)
