"""hub's torch port of bitsandbytes' CPU quantization against bitsandbytes 0.50.2 itself: the
kernels byte for byte on random tensors, and whole merges written by either backend
(``HUB_QUANT_BACKEND=torch`` or with bitsandbytes not importable at all) file for file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hub.merge import QuantOptions, merge
from hub.quant import backend, kernels
from hub.quant.scheme import QuantScheme

F = pytest.importorskip("bitsandbytes.functional")
pytestmark = pytest.mark.usefixtures("bnb_reference")

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
SHAPES = [(64, 64), (96, 40), (130, 64), (7, 9), (1, 33)]


def same_bytes(a, b):
    """Equal to the bit, -0.0 against 0.0 included (torch.equal calls them equal; a file's sha256 does not)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def random_weight(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * 0.05
    w[0, : min(shape[1], 64)] = 0.0          # an all-zero block when the row is long enough
    return w.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("blocksize", [32, 64, 128])
def test_4bit_quantize_dequantize_match_bitsandbytes(dtype, quant_type, blocksize):
    for seed, shape in enumerate(SHAPES):
        w = random_weight(shape, dtype, seed)
        for dq in (False, True):
            data, state = F.quantize_4bit(w, blocksize=blocksize, quant_type=quant_type, compress_statistics=dq)
            packed, absmax = kernels.quantize_4bit(w, quant_type, blocksize)
            assert torch.equal(packed, data)
            if dq:
                offset = absmax.mean()
                codes, nested = kernels.quantize_blockwise(absmax - offset, kernels.dynamic_code(), 256)
                assert torch.equal(codes, state.absmax) and torch.equal(nested, state.state2.absmax)
                assert torch.equal(offset, state.offset) and torch.equal(kernels.dynamic_code(), state.state2.code)
                absmax = kernels.dequantize_blockwise(codes, nested, kernels.dynamic_code(), 256) + offset
            else:
                assert torch.equal(absmax, state.absmax)
            assert torch.equal(kernels.code_4bit(quant_type), state.code)
            ours = kernels.dequantize_4bit(packed, absmax, quant_type, blocksize, shape, dtype)
            assert same_bytes(ours, F.dequantize_4bit(data, state))


def test_blockwise_8bit_matches_bitsandbytes_on_many_values():
    """The double-quantization kernel snaps to a 65536-point grid: compare on values of every scale."""
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        n = int(torch.randint(1, 6000, (1,), generator=g))
        values = (torch.rand(n, generator=g) - 0.5) * 10.0 ** float(torch.randint(-4, 3, (1,), generator=g))
        q, state = F.quantize_blockwise(values, blocksize=256)
        ours, absmax = kernels.quantize_blockwise(values, kernels.dynamic_code(), 256)
        assert torch.equal(ours, q) and torch.equal(absmax, state.absmax), seed
        assert torch.equal(kernels.dequantize_blockwise(q, absmax, kernels.dynamic_code(), 256),
                           F.dequantize_blockwise(q, state))


@pytest.mark.parametrize("dtype", DTYPES)
def test_int8_rows_match_bitsandbytes(dtype):
    w = random_weight((70, 33), dtype, 3)
    cb, scb, _ = F.int8_vectorwise_quant(w.to(torch.float16))
    ours_cb, ours_scb = kernels.int8_quantize(w)
    assert torch.equal(ours_cb, cb) and torch.equal(ours_scb, scb)
    assert torch.equal(kernels.int8_dequantize(cb, scb), F.int8_vectorwise_dequant(cb, scb))


def test_backend_choice(monkeypatch):
    monkeypatch.setenv(backend.ENV, "torch")
    assert backend.name() == "torch"
    monkeypatch.setenv(backend.ENV, "bitsandbytes")
    assert backend.name() == "bitsandbytes"
    monkeypatch.setenv(backend.ENV, "gpu")
    with pytest.raises(Exception, match="not a quantization backend"):
        backend.name()


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix == ".safetensors"}


@pytest.fixture(scope="module")
def pair(artifacts, tmp_path_factory):
    from hub.demo.factory import make_bnb_base

    base = artifacts.base("llama")
    adapter = artifacts.adapter("llama", "quant-backends", seed=9, r=4, lora_alpha=8,
                                target_modules=["q_proj", "o_proj", "gate_proj"])
    root = tmp_path_factory.mktemp("backends")
    return base, adapter, make_bnb_base(base, root / "nf4-dq", "nf4", True), make_bnb_base(base, root / "int8", "int8")


CASES = {
    "dequantize-nf4": lambda b, q4, q8: (q4, QuantOptions()),
    "requantize-nf4": lambda b, q4, q8: (q4, QuantOptions(requantize=True)),
    "requantize-int8": lambda b, q4, q8: (q8, QuantOptions(requantize=True)),
    "as-quantized-fp4": lambda b, q4, q8: (b, QuantOptions(as_quantized=QuantScheme("fp4", 128, True, "bfloat16"))),
    "as-quantized-nf4-requantize": lambda b, q4, q8: (
        b, QuantOptions(as_quantized=QuantScheme("nf4", 64, True, "float32"), requantize=True)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_merges_are_identical_with_either_backend(pair, case, tmp_path, monkeypatch):
    base, adapter, q4, q8 = pair
    source, options = CASES[case](base, q4, q8)
    outputs = {}
    for name in ("bitsandbytes", "torch"):
        monkeypatch.setenv(backend.ENV, name)
        result = merge(source, [(adapter, 1.0)], tmp_path / name, quant=options)
        assert result.lineage["quantization"]["backend"] == name
        outputs[name] = digest(tmp_path / name)
    assert outputs["torch"] == outputs["bitsandbytes"]


def test_merge_without_bitsandbytes_installed(pair, tmp_path):
    """bitsandbytes made unimportable in a fresh interpreter: hub still requantizes, to the same bytes."""
    base, adapter, q4, _ = pair
    merge(q4, [(adapter, 1.0)], tmp_path / "with", quant=QuantOptions(requantize=True))
    script = (
        "import sys; sys.modules['bitsandbytes'] = None\n"
        "from hub.merge import QuantOptions, merge\n"
        f"r = merge({str(q4)!r}, [({str(adapter)!r}, 1.0)], {str(tmp_path / 'without')!r}, "
        "quant=QuantOptions(requantize=True))\n"
        "assert r.lineage['quantization']['backend'] == 'torch'\n"
        "import importlib.util; assert importlib.util.find_spec('bitsandbytes') is None\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert digest(tmp_path / "without") == digest(tmp_path / "with")


def test_double_quant_offset_rounds_as_in_a_default_torch_process():
    """The offset is a mean over every absmax; torch's parallel mean rounds by thread count, and hub's
    merge narrows the count. 65536 absmax values (a 2048x2048 weight) are enough to tell them apart."""
    from hub.quant.packing import DEFAULT_THREADS, quantize
    from hub.quant.scheme import QuantScheme

    w = torch.randn(2048, 2048, generator=torch.Generator().manual_seed(1)) * 0.02
    _, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    torch.set_num_threads(1)
    try:
        packed = quantize(w, QuantScheme("nf4", 64, True, "float32"))
    finally:
        torch.set_num_threads(DEFAULT_THREADS)
    assert packed.nested.offset == state.offset.item()
    assert torch.equal(packed.absmax, state.absmax) and torch.equal(packed.nested.absmax, state.state2.absmax)


def test_hub_reads_blocks_over_the_flat_tensor_where_the_native_cpu_kernel_does_not():
    """In a process of its own (the session pins bitsandbytes' reference kernel): hub's bitsandbytes
    backend, on tensors whose rows end inside a block, equals bitsandbytes' reference dequantization,
    and its quantization's inverse, on every host, whatever its native CPU kernel returns there."""
    script = (
        "import json, torch\n"
        "import bitsandbytes.functional as F\n"
        "from hub.quant import backend\n"
        "from tests.bnb_reference import native_disagrees, reference_dequantize_4bit\n"
        "checked = 0\n"
        "for (m, n), bs in [((3, 64), 128), ((64, 64), 128), ((130, 64), 128), ((3, 48), 32), ((3, 96), 64),\n"
        "                   ((1, 2), 64), ((3, 160), 128), ((2, 128), 128)]:\n"
        "    for quant_type in ('nf4', 'fp4'):\n"
        "        for dtype in (torch.float32, torch.bfloat16, torch.float16):\n"
        "            w = (torch.randn((m, n), generator=torch.Generator().manual_seed(m * n)) * 0.05).to(dtype)\n"
        "            packed, absmax = backend.quantize_4bit(w, quant_type, bs)\n"
        "            ours = backend.dequantize_4bit(packed, absmax, quant_type, bs, (m, n), dtype)\n"
        "            ref = reference_dequantize_4bit(packed, absmax, bs, quant_type, (m, n), dtype)\n"
        "            assert torch.equal(ours.view(torch.uint8), ref.view(torch.uint8)), (m, n, bs, quant_type, dtype)\n"
        "            checked += 1\n"
        "print(json.dumps({'checked': checked, 'native_disagrees': native_disagrees()}))\n"
    )
    env = {**os.environ, backend.ENV: "bitsandbytes"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["checked"] == 8 * 2 * 3
