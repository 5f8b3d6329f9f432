"""The ``ollama`` format unit: a folder with the GGUF LoRA and a Modelfile for `ollama create`.

    FROM <the Ollama model or base GGUF given by --from>
    ADAPTER ./<name>.gguf

Ollama applies ADAPTER through llama.cpp, so the GGUF is the one `--format gguf` writes and
the same runtime rules gate it.
"""

from __future__ import annotations

from pathlib import Path

from hub.formats.gguf import OUTTYPES
from hub.formats.unit import ExportJob, FormatUnit

PLACEHOLDER = "<BASE-MODEL>"


def modelfile(adapter_file: str, from_model: str | None, adapter_name: str, base_name: str | None) -> str:
    lines = [f"# Modelfile for `ollama create {adapter_name} -f Modelfile`, written by hub from adapter "
             f"{adapter_name}"]
    if from_model:
        lines.append(f"FROM {_quote(from_model)}")
    else:
        lines += [f"# Replace {PLACEHOLDER} with the Ollama model or the GGUF file of the base this adapter was made",
                  f"# on ({base_name or 'its base'}); the adapter only works on that exact base.",
                  f"FROM {PLACEHOLDER}"]
    lines.append(f"ADAPTER ./{adapter_file}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    if any(c in value for c in "\n\r"):
        raise ValueError("a Modelfile value cannot span lines")
    return f'"{value}"' if any(c.isspace() for c in value) else value


def write(job: ExportJob, tmp: Path) -> dict:
    from hub.formats.gguf.writer import write_gguf

    gguf_name = f"{job.adapter_name}.gguf"
    summary = write_gguf(job.adapter_dir, job.adapter, job.base, tmp / gguf_name,
                         outtype=job.options.get("outtype") or "f32", name=job.adapter_name, progress=job.progress)
    (tmp / "Modelfile").write_text(modelfile(gguf_name, job.options.get("from_model"), job.adapter_name,
                                             getattr(job.base, "name", None)))
    return {**summary, "files": [gguf_name, "Modelfile"]}


FORMAT = FormatUnit(
    "ollama", "Ollama: the GGUF LoRA plus a Modelfile (FROM base, ADAPTER ./NAME.gguf) for `ollama create`",
    "folder", needs_base=True, outtypes=OUTTYPES, write=write, runtime="ollama")
