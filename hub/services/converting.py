"""Export to other formats and import from them, through ``hub.formats`` units.

`hub export NAME OUT --format F` and `hub add FILE --base BASE`. The format's runtime
rules (hub.compat.runtime) gate the export: it refuses exactly what `hub check --runtime`
calls an error. Outputs are written under a temporary name next to OUT and renamed into
place; a refused or failed export leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hub.errors import Incompatible, InvalidAdapter, UsageError
from hub.records import AddResult

DEFAULT_FORMAT = "peft"


def format_unit(name: str):
    from hub import plugins

    return plugins.load("hub.formats", name)


def format_for_file(path: Path):
    """The format unit whose suffixes match ``path`` (None: an adapter folder)."""
    from hub import plugins

    if path.is_dir():
        return None
    for p in plugins.plugins("hub.formats"):   # built-ins first
        unit = p.load()
        if path.suffix.lower() in unit.suffixes:
            return unit
    return None


class ConvertingService:
    """`hub export --format` and `hub add FILE --base`. Needs the adapters service and the
    checks service (a format's base and runtime rules)."""

    def __init__(self, ctx, adapters, checks):
        self.ctx = ctx
        self.adapters, self.checks = adapters, checks

    def export_as(self, name: str, out: str | os.PathLike, fmt: str = DEFAULT_FORMAT, *, base: str | None = None,
                  outtype: str | None = None, from_model: str | None = None, overwrite: bool = False,
                  progress=None) -> dict:
        from hub.compat import AdapterSpec
        from hub.formats.unit import ExportJob
        from hub.atomic import AtomicFolder
        from hub.write_guard import check_write_target

        unit = format_unit(fmt)
        if outtype and outtype not in unit.outtypes:
            raise UsageError(f"--outtype {outtype} does not apply to format {fmt}", "--outtype",
                             f"use one of: {', '.join(unit.outtypes)}" if unit.outtypes else "drop --outtype")
        if from_model and fmt != "ollama":
            raise UsageError("--from goes with --format ollama", "--from", "drop it or add --format ollama")
        record = self.adapters.get(name)
        adapter = AdapterSpec.from_json(record.name, record.config, record.modules,
                                        {k: tuple(v) for k, v in record.saved_tensors.items()}, record.dtype)
        base_spec = self.checks.base_spec_for(record.id, base) if unit.needs_base else None
        if unit.needs_base and base_spec is None:
            raise UsageError(f"format {fmt} needs the base the adapter runs on", "--base",
                             "pass --base NAME (a registered base or a model folder); see `hub check NAME --all-bases`")
        sources = [p for p in (record.path, getattr(base_spec, "path", None)) if p]   # the store is HUB_HOME
        target = check_write_target(self.ctx, out, sources=sources, overwrite=overwrite)
        if unit.output == "file" and target.is_dir():
            raise UsageError(f"format {fmt} writes one file, but the path is a folder", str(target),
                             f"name the file, e.g. {target / (name + '.gguf')}")
        if unit.runtime or base_spec is not None:
            from hub.compat import check_adapter_base, check_runtime

            # the base first (a file for the wrong base loads nowhere), then the runtime's own rules
            found = check_adapter_base(adapter, base_spec) if base_spec is not None else []
            found += check_runtime(adapter, unit.runtime, base_spec) if unit.runtime else []
            errors = [f for f in found if f.severity == "error"]
            if errors:
                first = errors[0]
                raise Incompatible(f"{name} cannot be exported as {fmt}: {first.code}"
                                   f"{' ' + first.module if first.module else ''}: {first.message}",
                                   None, None, findings=errors)
        job = ExportJob(self.adapters.adapter_dir(name), name, adapter, base_spec, target,
                        {"outtype": outtype, "from_model": from_model}, progress)
        if unit.output == "folder":
            folder = AtomicFolder(target, overwrite=True, replace_files=True)
            with folder as tmp:
                summary = unit.write(job, tmp) or {}
                folder.commit()
        else:
            summary = _write_file(unit, job, target)
        return {"name": name, "format": fmt, "path": str(target), "base": getattr(base_spec, "name", None),
                **summary}

    def add_file(self, path: str | os.PathLike, base: str, name: str | None = None, tags=(),
                 link: bool = False) -> AddResult:
        """Import a file of another format (a GGUF LoRA) as a PEFT adapter in the store."""
        file = Path(path).expanduser()
        unit = format_for_file(file)
        if unit is None or unit.read is None:
            raise InvalidAdapter("not a folder, and not a file of a format hub can import", str(file),
                                 "pass an adapter folder, or a file of a format with a reader (`hub plugins`)")
        if link:
            raise UsageError(f"--link keeps files in place, but a {unit.name} file is converted", str(file),
                             "drop --link: the converted adapter is stored")
        if not base:
            raise UsageError(f"importing a {unit.name} file needs its base", "--base",
                             "pass --base NAME (a registered base or a model folder)")
        from hub.formats.safetensors_header import hash_file

        base_spec = self.checks.base_spec_for(None, base)
        with tempfile.TemporaryDirectory(prefix=".hub-import-") as tmp:
            folder = Path(tmp) / (name or file.stem)
            unit.read(file, base_spec, folder)     # checks the file first (regular, sane header)
            digest = hash_file(file)
            source = {"kind": unit.name, "path": str(file.resolve())}
            lineage = [{"type": unit.name, "name": file.name, "sha256": digest}]
            return self.adapters.add(folder, name=name, tags=tags, source=source, lineage=lineage,
                            description=f"converted from {unit.name} {file.name} (sha256 {digest})")


def _write_file(unit, job, target: Path) -> dict:
    """A one-file format, written atomically (hub.atomic): a failure leaves the target as it was."""
    from hub.atomic import atomic_file

    with atomic_file(target) as tmp:
        return unit.write(job, tmp) or {}
