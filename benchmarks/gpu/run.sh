#!/usr/bin/env bash
# `hub merge --device cuda` on the 1.1 B anchor, proven against `--device cpu` and PEFT on the GPU.
#
#   benchmarks/gpu/run.sh                    the GPU run (needs CUDA; fails loudly without it)
#   benchmarks/gpu/run.sh --device cpu       dry run: every step but the CUDA ones (PEFT runs on CPU
#   HUB_GPU_DRYRUN=1 benchmarks/gpu/run.sh   and is compared with hub's CPU merge, bit for bit)
#   benchmarks/gpu/run.sh --check-wheels     only make the venv from the wheelhouse and import from it
#
# Steps: (1) a venv with --system-site-packages (the machine's torch) and hub's other dependencies
# installed offline from benchmarks/gpu/wheelhouse (built beforehand by wheelhouse.sh, < 64 MiB:
# the pinned closure of benchmarks/gpu/requirements.txt, listed in its pins.txt),
# unless the interpreter already imports all of them; (2) the anchor from benchmarks/merge (1.1 B
# Llama, bf16, 2 shards, and an all-linear r16 PEFT adapter); (3) the disk-read rate (cold, then
# warm) and the host-to-device copy rate (pageable, pinned); (4) `hub merge --device cpu`, then
# `--device cuda`, then PEFT's merge_and_unload on the GPU; (5) tensor-by-tensor comparisons:
# cuda vs cpu within 1 bf16 ulp (fp32 matmuls may round differently), PEFT-on-GPU vs hub-cuda within
# 2 ulps (PEFT computes the GPU delta in bf16), and in the dry run PEFT-on-CPU vs hub-cpu bit-identical;
# (6) a summary with throughput against the measured rates, ending RESULT: PASS or RESULT: FAIL.
#
# Environment: HUB_GPU_PYTHON (default python3), HUB_GPU_WORK (default /tmp/hub-gpu-bench: about
# 7 GB: the anchor and three merged copies), HUB_GPU_WHEELS (default benchmarks/gpu/wheelhouse).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DEVICE=cuda
CHECK_WHEELS=0
[[ "${HUB_GPU_DRYRUN:-0}" == 1 ]] && DEVICE=cpu
while (($#)); do
    case "$1" in
        --device) DEVICE=${2:?--device needs cpu or cuda}; shift 2 ;;
        --check-wheels) CHECK_WHEELS=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$DEVICE" == cpu || "$DEVICE" == cuda* ]] || { echo "run.sh: --device is cpu or cuda, not $DEVICE" >&2; exit 2; }
PY=${HUB_GPU_PYTHON:-python3}
WORK=${HUB_GPU_WORK:-/tmp/hub-gpu-bench}
WHEELS=${HUB_GPU_WHEELS:-$HERE/wheelhouse}
STARTED=$SECONDS

step() { printf '\n== [%4ds] %s\n' "$((SECONDS - STARTED))" "$*"; }
die() { printf '\nrun.sh: FAILED: %s\n' "$*" >&2; exit 1; }
FAILED_AT=
trap 'FAILED_AT="line $LINENO: $BASH_COMMAND"' ERR
trap 'rc=$?; if ((rc)); then printf "\nrun.sh: FAILED (exit %d) at %s\n" "$rc" "${FAILED_AT:-?}" >&2; fi' EXIT

mkdir -p "$WORK"
export PYTHONPATH=$REPO HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error HUB_HOME=$WORK/hub-home
export HUB_GPU_RESULTS=$WORK/results.jsonl
rm -rf "$HUB_HOME" "$HUB_GPU_RESULTS"

# -- (1) the environment -------------------------------------------------------------------------
IMPORTS="peft, transformers, accelerate, safetensors, huggingface_hub, sqlalchemy, alembic, click, jsonschema, platformdirs, yaml, regex, numpy"
step "environment: $("$PY" --version 2>&1) at $(command -v "$PY")"
if ((CHECK_WHEELS == 0)) && "$PY" -c "import torch, $IMPORTS" 2>/dev/null; then
    echo "every dependency imports already: no venv needed"
else
    [[ -d "$WHEELS" ]] || die "no wheelhouse at $WHEELS: build it where PyPI is reachable with benchmarks/gpu/wheelhouse.sh"
    # a venv that sees the machine's torch; where venv or ensurepip is missing, a plain folder on
    # PYTHONPATH (pip --target), and where pip is missing too, the wheels unzipped into it
    rm -rf "$WORK/venv" "$WORK/site"
    PINS=(--no-index --no-deps --find-links "$WHEELS" -r "$WHEELS/pins.txt")   # torch stays the machine's own
    # a venv made from inside another venv (the GPU image's python3 is /opt/torch/.venv's) sees the
    # base interpreter's site-packages, not that venv's torch: there, pip --target instead
    IN_VENV=$("$PY" -c 'import sys; print(int(sys.prefix != sys.base_prefix))')
    if ((IN_VENV == 0)) && "$PY" -m venv --system-site-packages "$WORK/venv" 2>/dev/null; then
        "$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
        PY=$WORK/venv/bin/python
        where="the venv $WORK/venv"
    elif "$PY" -m pip --version >/dev/null 2>&1; then
        "$PY" -m pip install --quiet --disable-pip-version-check --target "$WORK/site" "${PINS[@]}"
        export PYTHONPATH=$PYTHONPATH:$WORK/site
        where="$WORK/site (pip --target: $( ((IN_VENV)) && echo "$PY is a venv's" || echo "no venv module here"))"
    else
        mkdir -p "$WORK/site"
        for wheel in "$WHEELS"/*.whl; do "$PY" -m zipfile -e "$wheel" "$WORK/site"; done
        export PYTHONPATH=$PYTHONPATH:$WORK/site
        where="$WORK/site (no venv, no pip here; wheels unzipped)"
    fi
    echo "installed $(wc -l < "$WHEELS/pins.txt") pinned wheels from $WHEELS ($(du -sh "$WHEELS" | cut -f1)) into $where"
    if ((CHECK_WHEELS)); then
        "$PY" -c "import ${IMPORTS//peft, transformers, accelerate, /}" \
            || die "the wheelhouse's packages do not import"
        "$PY" -c "import torch" 2>/dev/null || { echo "wheels OK (this interpreter has no torch: peft, transformers and accelerate not imported)"; exit 0; }
        "$PY" -c "import torch, $IMPORTS" || die "the wheelhouse's packages do not import with this torch"
        echo "wheels OK"; exit 0
    fi
fi
"$PY" - "$DEVICE" <<'PYEOF' || die "torch cannot run on $DEVICE"
import sys, torch
device = sys.argv[1]
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit("run.sh: CUDA asked for but torch sees no GPU (use --device cpu for the dry run)")
PYEOF
BENCH=("$PY" "$HERE/gpu_bench.py")

# -- (2) the anchor ------------------------------------------------------------------------------
step "anchor: 1.1 B Llama (bf16) and an all-linear r16 adapter in $WORK (built once, kept)"
"${BENCH[@]}" anchor "$WORK"
BASE=$WORK/synth1b
ADAPTER=$WORK/adapter-all-linear

# -- (3) reference rates -------------------------------------------------------------------------
step "disk-read rate of the base (cold: pages dropped first; then warm)"
"${BENCH[@]}" disk-rate "$BASE"
step "host-to-device copy rate"
"${BENCH[@]}" h2d-rate "$DEVICE"

# -- (4) the merges ------------------------------------------------------------------------------
rm -rf "$WORK/out-"*
step "hub merge --device cpu"
"${BENCH[@]}" hub-merge "$BASE" "$ADAPTER" "$WORK/out-hub-cpu" cpu
CUDA_OK=1
if [[ "$DEVICE" == cuda* ]]; then
    step "hub merge --device $DEVICE"
    # a failure here still lets PEFT run and be compared with hub's CPU merge (a GPU lease is short)
    "${BENCH[@]}" hub-merge "$BASE" "$ADAPTER" "$WORK/out-hub-cuda" "$DEVICE" \
        || { CUDA_OK=0; echo "run.sh: hub merge --device $DEVICE FAILED (above); going on without it" >&2; }
fi
step "PEFT merge_and_unload on $DEVICE"
"${BENCH[@]}" peft "$BASE" "$ADAPTER" "$WORK/out-peft-$DEVICE" "$DEVICE"

# -- (5) equal outputs ---------------------------------------------------------------------------
step "comparing outputs tensor by tensor"
if [[ "$DEVICE" == cuda* ]] && ((CUDA_OK)); then
    "${BENCH[@]}" compare "$WORK/out-hub-cuda" "$WORK/out-hub-cpu" --label "hub cuda vs hub cpu" --max-ulps 1
    "${BENCH[@]}" compare "$WORK/out-peft-$DEVICE" "$WORK/out-hub-cuda" --label "peft gpu vs hub cuda" --max-ulps 2
elif [[ "$DEVICE" == cuda* ]]; then
    "${BENCH[@]}" compare "$WORK/out-peft-$DEVICE" "$WORK/out-hub-cpu" --label "peft gpu vs hub cpu" --max-ulps 2
else
    "${BENCH[@]}" compare "$WORK/out-peft-cpu" "$WORK/out-hub-cpu" --label "peft cpu vs hub cpu" --max-ulps 0
fi

# -- (6) summary ---------------------------------------------------------------------------------
step "done in $((SECONDS - STARTED)) s"
"${BENCH[@]}" summary "$HUB_GPU_RESULTS"
((CUDA_OK)) || die "hub merge --device $DEVICE failed (its error is above)"
