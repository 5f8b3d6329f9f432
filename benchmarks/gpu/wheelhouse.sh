#!/usr/bin/env bash
# Build benchmarks/gpu/wheelhouse: the wheels run.sh installs on a GPU machine that has no network,
# Python 3.12 and its own torch. Run it here (PyPI reachable, the project's venv active): it takes
# hub's runtime dependencies (pyproject.toml, less torch and textual, which `hub merge` does not
# import) with everything they need, at the versions installed here (.ci/constraints.txt), and
# downloads the cp312 manylinux or pure-Python wheel of each, without their dependencies (torch
# must not come along). Prints the total size, which must stay under 64 MiB (what travels).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/wheelhouse}
PY=${PYTHON:-python}
mkdir -p "$OUT"
"$PY" - "$HERE/requirements.txt" > "$OUT/pins.txt" <<'PYEOF'
import sys
from importlib.metadata import distribution
from packaging.requirements import Requirement

# the GPU machine: CPython 3.12 on x86_64 Linux
env = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
todo = [Requirement(l.strip()).name for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
pins = {}
while todo:
    name = todo.pop().lower().replace("_", "-")
    if name in pins or name == "torch":
        continue
    dist = distribution(name)
    pins[name] = dist.version
    todo += [r.name for r in map(Requirement, dist.requires or []) if not r.marker or r.marker.evaluate(env)]
print("\n".join(f"{k}=={v}" for k, v in sorted(pins.items())))
PYEOF
"$PY" -m pip download --quiet --dest "$OUT" --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 -r "$OUT/pins.txt"
bytes=$(du -cb "$OUT"/*.whl | tail -1 | cut -f1)
echo "wheelhouse: $(ls "$OUT"/*.whl | wc -l) wheels, $((bytes / 1048576)) MiB in $OUT"
if (( bytes >= 64 * 1048576 )); then
    echo "wheelhouse.sh: FAILED: over 64 MiB" >&2
    exit 1
fi
