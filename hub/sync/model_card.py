"""The README.md (model card) hub writes when pushing an adapter.

The YAML metadata is what the Hub indexes: ``base_model`` with
``base_model_relation: adapter`` makes the repo show up under the base's
"adapters" (tag ``base_model:adapter:BASE``), ``library_name: peft`` picks the
loader. Combined adapters also carry their lineage (parents, weights, hashes)
and recipe under ``hub:``. The output is deterministic (no dates), so pushing
unchanged content yields an identical card and no commit. An existing card's
other metadata and its prose are kept.
"""

from __future__ import annotations

import json
import re

import yaml

_FRONT = re.compile(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.S)
_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
PIPELINES = {"CAUSAL_LM": "text-generation", "SEQ_2_SEQ_LM": "text2text-generation",
             "SEQ_CLS": "text-classification", "TOKEN_CLS": "token-classification",
             "QUESTION_ANS": "question-answering", "FEATURE_EXTRACTION": "feature-extraction"}


def split_card(text: str | None) -> tuple[dict, str]:
    """README text -> (metadata, body). Unreadable metadata counts as none."""
    if not text:
        return {}, ""
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError:
        meta = {}
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


def hub_base_model(value: str | None) -> str | None:
    """A declared base usable as Hub metadata: a repo id, not a local path or null."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith((".", "/", "~")) or ".." in value or "--" in value or not _HUB_REPO.match(value):
        return None
    return value


def metadata(record, base_model: str | None, relation: str = "adapter") -> dict:
    """The card metadata for an AdapterRecord (hub.records) pushed with ``base_model``."""
    meta: dict = {}
    if base_model:
        meta["base_model"] = base_model
        meta["base_model_relation"] = relation
    meta["library_name"] = "peft"
    pipeline = PIPELINES.get((record.task_type or "").upper())
    if pipeline:
        meta["pipeline_tag"] = pipeline
    tags = ([f"base_model:{relation}:{base_model}"] if base_model else []) + ["lora"]
    tags += [flag for flag, on in (("dora", record.use_dora), ("rslora", record.use_rslora)) if on]
    tags += [t for t in record.tags if t not in tags]
    meta["tags"] = tags
    hub: dict = {"name": record.name, "sha256": record.sha256, "r": record.r,
                 "lora_alpha": _num(record.lora_alpha), "target_modules": list(record.target_modules)}
    if record.lineage:
        hub["lineage"] = [{k: (_num(v) if k == "weight" else v) for k, v in parent.items()
                           if k in ("type", "name", "sha256", "weight") and v is not None}
                          for parent in record.lineage]
    if record.recipe:
        hub["recipe"] = json.loads(json.dumps(record.recipe, sort_keys=True, default=str))
    meta["hub"] = hub
    return meta


def body(record, repo_id: str, base_model: str | None) -> str:
    base_text = f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "its base model"
    kind = "combined LoRA adapter" if record.lineage else "LoRA adapter"
    lines = [
        f"# {record.name}", "",
        f"A PEFT {kind} for {base_text}.", "",
        "| r | alpha | target modules | rsLoRA | DoRA | parameters |",
        "|---|---|---|---|---|---|",
        f"| {record.r} | {_num(record.lora_alpha)} | {', '.join(record.target_modules)} | "
        f"{'yes' if record.use_rslora else 'no'} | {'yes' if record.use_dora else 'no'} | {record.param_count:,} |",
        "", "## Usage", "", "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM", "",
        f"base = AutoModelForCausalLM.from_pretrained({base_model or 'BASE_MODEL'!r})",
        f"model = PeftModel.from_pretrained(base, {repo_id!r})",
        "```", "",
    ]
    if record.lineage:
        lines += ["## Lineage", "", "| parent | weight | sha256 |", "|---|---|---|"]
        for parent in record.lineage:
            weight = "" if parent.get("weight") is None else _num(parent["weight"])
            lines.append(f"| {parent.get('name')} | {weight} | `{(parent.get('sha256') or '')[:16]}` |")
        lines.append("")
    if record.recipe:
        lines += ["## Recipe", "", "```json", json.dumps(record.recipe, indent=2, sort_keys=True, default=str),
                  "```", ""]
    lines.append("Pushed with `hub`, a registry for PEFT LoRA adapters.")
    return "\n".join(lines) + "\n"


def render(record, repo_id: str, base_model: str | None = None, existing: str | None = None,
           relation: str = "adapter") -> str:
    """The full README.md: our metadata over the existing card's, and its prose if it had any."""
    old_meta, old_body = split_card(existing)
    if base_model is None and isinstance(old_meta.get("base_model"), str):
        base_model = hub_base_model(old_meta["base_model"])  # keep what the card already said
    meta = dict(old_meta)
    for key in ("base_model", "base_model_relation"):
        meta.pop(key, None)
    meta.update(metadata(record, base_model, relation))
    old_tags = [t for t in (old_meta.get("tags") or []) if isinstance(t, str)] if isinstance(old_meta.get("tags"), list) else []
    meta["tags"] = meta["tags"] + [t for t in old_tags if t not in meta["tags"] and not t.startswith("base_model:")]
    text = old_body if old_body.strip() else body(record, repo_id, base_model)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{front}---\n\n{text.lstrip()}"


def _num(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x
