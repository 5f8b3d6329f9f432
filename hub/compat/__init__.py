"""Compatibility rules -> Findings (code, severity, module, message).

Pure functions over compact specs (hub.compat.specs), so the registry feeds them rows
directly and no check re-reads a file:

- :func:`check_adapter_base` — does an adapter fit a base, module by module?
- :func:`check_adapters` — can these adapters be combined by a method?
- :func:`check_runtime` — will vLLM / llama.cpp / PEFT serve this adapter as is?
"""

from hub.compat.adapter_adapter import check_adapters, method_rules
from hub.compat.adapter_base import check_adapter_base, fits, fitting_bases
from hub.compat.runtime import check_runtime, runtimes
from hub.findings import CODES
from hub.compat.specs import AdapterSpec, BaseSpec

__all__ = ["AdapterSpec", "BaseSpec", "CODES", "method_rules", "runtimes", "check_adapter_base", "check_adapters",
           "check_runtime", "fits", "fitting_bases"]
