"""Load and validate a PEFT LoRA ``adapter_config.json`` (no peft import)."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from hub import patterns
from hub.checked_files import FileTooLarge, NotRegularFile, read_regular
from hub.errors import InvalidConfig, Unsupported
from hub.paths import schemas_dir

CONFIG_NAME = "adapter_config.json"
MAX_CONFIG_BYTES = 16 * 1024 * 1024

# Every field of peft 0.21's LoraConfig; anything else is kept but reported.
KNOWN_KEYS = frozenset("""
alora_invocation_tokens alpha_pattern arrow_config auto_mapping base_model_name_or_path bias corda_config
ensure_weight_tying eva_config exclude_modules fan_in_fan_out inference_mode init_lora_weights kasa_config
layer_replication layers_pattern layers_to_transform loftq_config lora_alpha lora_bias lora_dropout
lora_ga_config megatron_config megatron_core modules_to_save monteclora_config peft_type peft_version
qalora_group_size r rank_pattern revision runtime_config target_modules target_parameters task_type
trainable_token_indices use_bdlora use_dora use_qalora use_rslora velora_config
""".split())


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads((schemas_dir() / name).read_text())


@lru_cache(maxsize=None)
def _validator(name: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def schema_errors(doc, schema_name: str) -> list[str]:
    """Human-readable schema violations of ``doc``, most specific first."""
    errors = sorted(_validator(schema_name).iter_errors(doc), key=lambda e: (len(e.path), e.message))
    out = []
    for err in errors:
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message
        if err.validator == "oneOf" and err.context:
            message = f"{err.instance!r} is not a valid value"
        out.append(f"{where}: {message}")
    return out


def read_config_text(path: str | Path) -> str:
    """The text of one adapter_config.json, read safely; raises InvalidConfig."""
    path = Path(path)
    try:
        # a FIFO or device (or a link to one) would block or never end; real configs are small.
        # Decided on the open descriptor: a FIFO swapped in after a stat() cannot block us.
        raw = read_regular(path, MAX_CONFIG_BYTES)
    except NotRegularFile:
        raise InvalidConfig("adapter_config.json is not a regular file", str(path),
                            "replace it with the JSON file") from None
    except FileTooLarge as exc:
        raise InvalidConfig(f"adapter_config.json is {exc.strerror}, too large for a config", str(path),
                            "check that this is the right file") from None
    except FileNotFoundError:
        raise InvalidConfig("adapter_config.json is missing", str(path.parent),
                            "point hub at a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)") from None
    except OSError as exc:
        raise InvalidConfig(f"cannot read adapter config: {exc.strerror}", str(path), "check permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidConfig("adapter config is not UTF-8 text", str(path), "re-save it as UTF-8 JSON") from None


def read_config(path: str | Path) -> dict:
    """Parse and schema-check one adapter_config.json; raises InvalidConfig."""
    return parse_config(read_config_text(path), str(path))


def parse_config(text: str, where: str) -> dict:
    """Parse and schema-check the text of an adapter_config.json; raises InvalidConfig."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidConfig(f"adapter config is not valid JSON (line {exc.lineno}: {exc.msg})", where,
                            "fix the JSON syntax") from None
    except RecursionError:
        raise InvalidConfig("adapter config is nested too deeply", where, "fix the file") from None
    try:
        validate_config(doc, where)
    except RecursionError:
        raise InvalidConfig("adapter config is nested too deeply", where, "fix the file") from None
    return doc


def validate_config(doc, where: str) -> None:
    if not isinstance(doc, dict):
        raise InvalidConfig("adapter config must be a JSON object", where, "fix the file")
    bad = _nonfinite_key(doc)
    if bad is not None:
        # JSON has no NaN/Infinity, but Python's parser accepts them (and 1e400 becomes inf);
        # the schema's bounds cannot catch NaN, which compares false with everything
        raise InvalidConfig(f"adapter config has a non-finite number at {bad or '(top level)'}", where,
                            "use a finite number")
    problems = schema_errors(doc, "adapter_config.schema.json")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidConfig(f"adapter config violates the schema: {problems[0]}{more}", where,
                            "fix the value; see schemas/adapter_config.schema.json")
    peft_type = doc.get("peft_type") or "LORA"
    if peft_type != "LORA":
        raise Unsupported(f"peft_type {peft_type} is not LoRA", where, "hub indexes, merges and combines LoRA adapters only")
    if isinstance(doc.get("target_modules"), str):
        try:
            patterns.compile(doc["target_modules"])
        except patterns.PatternError as exc:
            raise InvalidConfig(f"target_modules regex does not compile: {exc}", where, "fix the pattern") from None
    for key in ("rank_pattern", "alpha_pattern"):
        for pattern in (doc.get(key) or {}):
            try:
                patterns.compile(rf"(.*\.)?({pattern})$")
            except patterns.PatternError as exc:
                raise InvalidConfig(f"{key} key {pattern!r} is not a valid regex: {exc}", where, "fix the pattern") from None


def _nonfinite_key(value, path: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _nonfinite_key(child, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def unknown_keys(doc: dict) -> list[str]:
    return sorted(set(doc) - KNOWN_KEYS)


def pattern_key(keys, module_path: str) -> str | None:
    """PEFT's own rule (peft.utils.other.get_pattern_key): first key matching the path's tail."""
    for key in keys or ():
        if patterns.match(rf"(.*\.)?({key})$", module_path):   # under hub.patterns' time budget
            return key
    return None


def module_rank(doc: dict, module_path: str) -> int:
    key = pattern_key(doc.get("rank_pattern"), module_path)
    return int(doc["rank_pattern"][key]) if key is not None else int(doc["r"])


def module_alpha(doc: dict, module_path: str) -> float:
    key = pattern_key(doc.get("alpha_pattern"), module_path)
    return float(doc["alpha_pattern"][key]) if key is not None else float(doc["lora_alpha"])


def scaling(alpha: float, r: int, use_rslora: bool) -> float:
    return alpha / (r ** 0.5) if use_rslora else alpha / r
