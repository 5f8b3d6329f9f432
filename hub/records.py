"""Plain dataclasses the service returns to front-ends (no SQLAlchemy, no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from hub.flags import flags_of


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
        return flags_of(self)

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
