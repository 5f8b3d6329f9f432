"""The README.md (model card) hub writes when pushing an adapter or a merged model.

The YAML metadata is what the Hub indexes. For an adapter, ``base_model`` with
``base_model_relation: adapter`` lists the repo under its base's adapters (tag
``base_model:adapter:BASE``) and ``library_name: peft`` picks the loader. A merged
model says ``base_model_relation: merge`` and ``library_name: transformers``.
Combined adapters and merged models carry their lineage (parents, weights,
hashes) and recipe under ``hub:``. Output is deterministic (no dates), so pushing
unchanged content yields the same card and no commit. An existing card's other
metadata and its prose are kept; a body hub wrote itself is written afresh.
"""

from __future__ import annotations

import json
import re

import yaml

from hub import safe_yaml
from hub.errors import UsageError
from hub.sync.spec import check_repo_id

_FRONT = re.compile(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.S)
MARKER = "Pushed with `hub`, a registry for PEFT LoRA adapters."  # ends every body hub writes
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
    try:   # the card may come from anyone: aliases are bounded (hub.safe_yaml)
        meta = safe_yaml.load(m.group(1)) or {}
    except (yaml.YAMLError, safe_yaml.YAMLTooLarge):
        meta = {}
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


def hub_base_model(value) -> str | None:
    """A declared base usable as Hub metadata: a repo id, not a local path or null."""
    if not value or not isinstance(value, str):
        return None
    try:
        return check_repo_id(value.strip())
    except UsageError:
        return None


def card_base_model(text: str | None) -> str | None:
    meta, _ = split_card(text)
    return hub_base_model(meta.get("base_model"))


def _num(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _lineage(parents) -> list[dict]:
    return [{k: (_num(v) if k == "weight" else v) for k, v in p.items()
             if k in ("type", "name", "sha256", "weight") and v is not None} for p in parents]


def _plain(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# -- adapters ------------------------------------------------------------------------------

def adapter_metadata(record, base_model: str | None) -> dict:
    """Card metadata for an AdapterRecord (hub.records)."""
    meta: dict = {}
    if base_model:
        meta["base_model"] = base_model
        meta["base_model_relation"] = "adapter"
    meta["library_name"] = "peft"
    pipeline = PIPELINES.get((record.task_type or "").upper())
    if pipeline:
        meta["pipeline_tag"] = pipeline
    tags = ([f"base_model:adapter:{base_model}"] if base_model else []) + ["lora"]
    tags += [flag for flag, on in (("dora", record.use_dora), ("rslora", record.use_rslora)) if on]
    meta["tags"] = tags + [t for t in record.tags if t not in tags]
    hub: dict = {"name": record.name, "sha256": record.sha256, "r": record.r,
                 "lora_alpha": _num(record.lora_alpha), "target_modules": list(record.target_modules)}
    if record.lineage:
        hub["lineage"] = _lineage(record.lineage)
    if record.recipe:
        hub["recipe"] = _plain(record.recipe)
    meta["hub"] = hub
    return meta


def adapter_body(record, repo_id: str, base_model: str | None) -> str:
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
    return "\n".join(lines + _provenance(record.lineage, record.recipe)) + "\n"


def render(record, repo_id: str, base_model: str | None = None, existing: str | None = None) -> str:
    """README.md for an adapter: our metadata over the existing card's."""
    base_model = base_model or card_base_model(existing)
    return _render(adapter_metadata(record, base_model), adapter_body(record, repo_id, base_model), existing)


# -- merged models -------------------------------------------------------------------------

def merged_metadata(model, base_model: str | None) -> dict:
    """Card metadata for a MergedModelRecord (hub.services.merging)."""
    meta: dict = {}
    if base_model:
        meta["base_model"] = base_model
        meta["base_model_relation"] = "merge"
    meta["library_name"] = "transformers"
    meta["tags"] = ([f"base_model:merge:{base_model}"] if base_model else []) + ["merge", "lora"]
    hub: dict = {"name": model.name, "base": model.base_name, "dtype": model.dtype}
    hub["lineage"] = _lineage(model.lineage)
    if model.recipe:
        hub["recipe"] = _plain(model.recipe)
    meta["hub"] = {k: v for k, v in hub.items() if v not in (None, [], {})}
    return meta


def merged_body(model, repo_id: str, base_model: str | None) -> str:
    base_text = f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "its base model"
    lines = [
        f"# {model.name}", "",
        f"{base_text[0].upper() + base_text[1:]} with LoRA adapters merged into its weights.", "",
        "## Usage", "", "```python",
        "from transformers import AutoModelForCausalLM", "",
        f"model = AutoModelForCausalLM.from_pretrained({repo_id!r})",
        "```", "",
    ]
    return "\n".join(lines + _provenance(model.lineage, model.recipe)) + "\n"


def render_merged(model, repo_id: str, base_model: str | None = None, existing: str | None = None) -> str:
    base_model = base_model or card_base_model(existing)
    return _render(merged_metadata(model, base_model), merged_body(model, repo_id, base_model), existing)


# -- shared ----------------------------------------------------------------------------------

def _provenance(lineage, recipe) -> list[str]:
    lines: list[str] = []
    if lineage:
        lines += ["## Lineage", "", "| parent | weight | sha256 |", "|---|---|---|"]
        for parent in lineage:
            weight = "" if parent.get("weight") is None else _num(parent["weight"])
            lines.append(f"| {parent.get('name')} | {weight} | `{(parent.get('sha256') or '')[:16]}` |")
        lines.append("")
    if recipe:
        lines += ["## Recipe", "", "```json", json.dumps(recipe, indent=2, sort_keys=True, default=str), "```", ""]
    lines.append(MARKER)
    return lines


def _render(meta: dict, fresh_body: str, existing: str | None) -> str:
    old_meta, old_body = split_card(existing)
    managed = set(meta) | {"base_model", "base_model_relation"}
    old_tags = old_meta.get("tags") if isinstance(old_meta.get("tags"), list) else []
    meta["tags"] += [t for t in old_tags if isinstance(t, str) and t not in meta["tags"]
                     and not t.startswith("base_model:")]
    # the author's other metadata (license, datasets, ...) follows ours, in its own order
    meta.update({k: v for k, v in old_meta.items() if k not in managed})
    # keep the author's prose; a body hub wrote itself is written afresh (repo id, numbers)
    text = old_body if (old_body.strip() and MARKER not in old_body) else fresh_body
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{front}---\n\n{text.lstrip()}"
