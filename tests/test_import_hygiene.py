"""The domain core never imports front-ends, the ORM layer or the Hub client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CORE = ["hub.formats.safetensors_header", "hub.formats.adapter_config", "hub.formats.adapter_weights",
        "hub.formats.base_model", "hub.inspect", "hub.findings", "hub.errors"]
OPTIONAL_CORE = ["hub.compat", "hub.merge", "hub.combine", "hub.surgery"]
FORBIDDEN = ["click", "textual", "sqlalchemy", "huggingface_hub"]


def _loaded(modules):
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    try:\n        importlib.import_module(m)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if e.name != m: raise\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", CORE + OPTIONAL_CORE)
def test_core_imports_no_front_end(module):
    loaded = _loaded([module])
    bad = [m for m in FORBIDDEN if m in loaded]
    assert not bad, f"{module} pulls in {bad}"
