"""What hub.merge refuses, and what an interrupted or failed merge leaves behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hub.errors import AlreadyExists, HubError, Incompatible, Unsupported, UsageError
from hub.merge import build_plan, merge, parse_size

REPO = Path(__file__).resolve().parents[1]


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def copy_adapter(src: Path, dst: Path, **config_changes) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(config_changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("config,message", [
    ({"quant_method": "gptq", "bits": 4}, "GPTQ-quantized; hub merges into full-precision"),
    ({"quant_method": "awq", "bits": 4}, "AWQ-quantized; hub merges into full-precision"),
    # a bitsandbytes config over unpacked weights is not a checkpoint transformers wrote
    ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "no packed weight"),
])
def test_refuses_quantized_bases_it_cannot_dequantize(artifacts, tmp_path, config, message):
    base, adapter = artifacts["plain"]
    qbase = tmp_path / "qbase"
    shutil.copytree(base, qbase)
    cfg = json.loads((qbase / "config.json").read_text())
    cfg["quantization_config"] = config
    (qbase / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Unsupported, match=message):
        merge(qbase, [(adapter, 1.0)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_layer_replication(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    bad = copy_adapter(adapter, tmp_path / "rep", layer_replication=[[0, 2], [1, 2]])
    with pytest.raises(Unsupported, match="layer_replication"):
        build_plan(base, [(bad, 1.0)])


def test_refuses_non_lora_peft_types(artifacts, tmp_path):
    from peft import IA3Config, get_peft_model
    from transformers import AutoModelForCausalLM

    base, _ = artifacts["plain"]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]))
    model.save_pretrained(tmp_path / "ia3")
    with pytest.raises(HubError, match="IA3"):
        merge(base, [(tmp_path / "ia3", 1.0)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_adapter_for_another_base_with_findings(artifacts, tmp_path):
    _, adapter = artifacts["plain"]
    other = artifacts.base("llama", hidden_size=96)
    with pytest.raises(Incompatible) as err:
        merge(other, [(adapter, 1.0)], tmp_path / "out")
    assert err.value.findings and all(f.severity for f in err.value.findings)
    assert any(f.code == "SHAPE_MISMATCH" for f in err.value.findings)
    assert not (tmp_path / "out").exists()


def test_refuses_lora_bias_without_base_bias(artifacts, tmp_path):
    base = artifacts.base("llama")
    adapter = artifacts.adapter("llama", "bias-nobias", seed=21, r=4, lora_alpha=8, target_modules=["q_proj"],
                                lora_bias=True)
    with pytest.raises(Incompatible, match="lora_bias") as err:
        build_plan(base, [(adapter, 1.0)])
    assert err.value.findings[0].code == "LORA_BIAS_WITHOUT_BASE_BIAS"


def test_refuses_weighting_a_full_tensor_replacement(artifacts, tmp_path):
    base, adapter = artifacts["modules_to_save"]
    with pytest.raises(Unsupported, match="cannot be weighted"):
        build_plan(base, [(adapter, 0.5)])


def test_usage_errors():
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size(123) == 123
    for bad in ("five", "5XB", "-1GB"):
        with pytest.raises(UsageError):
            parse_size(bad)


def test_bad_dtype_and_empty_adapter_list(artifacts):
    base, adapter = artifacts["plain"]
    with pytest.raises(UsageError):
        build_plan(base, [(adapter, 1.0)], dtype="int8")
    with pytest.raises(UsageError):
        build_plan(base, [])
    with pytest.raises(UsageError):
        build_plan(base, [(adapter, float("nan"))])


def test_nan_adapter_is_refused_and_nothing_is_written(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    bad = tmp_path / "nan-adapter"
    shutil.copytree(adapter, bad)
    tensors = load_file(bad / "adapter_model.safetensors")
    key = next(k for k in tensors if k.endswith("lora_B.weight"))
    tensors[key][0, 0] = float("nan")
    save_file(tensors, bad / "adapter_model.safetensors")
    with pytest.raises(HubError, match="NaN"):
        merge(base, [(bad, 1.0)], tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path, "out")


def test_existing_output_is_refused_then_replaced_whole_with_overwrite(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists):
        merge(base, [(adapter, 1.0)], out, device="cpu")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    merge(base, [(adapter, 1.0)], out, device="cpu", overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert not leftovers(tmp_path, "out")


def test_interrupt_inside_the_merge_leaves_nothing(artifacts, tmp_path):
    base, adapter = artifacts["all_linear"]
    calls = []

    def progress(done, total, item):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge(base, [(adapter, 1.0)], tmp_path / "out", device="cpu", progress=progress, shard_size="20KB")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path, "out")


def test_base_file_changing_under_the_merge_fails_cleanly(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    copy = tmp_path / "base"
    shutil.copytree(base, copy)
    plan = build_plan(copy, [(adapter, 1.0)])
    with open(copy / "model.safetensors", "r+b") as fh:   # truncated after planning
        fh.truncate(os.path.getsize(copy / "model.safetensors") // 2)
    from hub.merge import execute

    with pytest.raises(HubError):   # what failed, as one line, not a crash
        execute(plan, tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path, "out")


SLOW_MERGE = textwrap.dedent("""
    import sys, time
    from hub.merge import merge
    def progress(done, total, item):
        print("progress", done, flush=True)
        time.sleep(0.3)
    merge(sys.argv[1], [(sys.argv[2], 1.0)], sys.argv[3], device="cpu", progress=progress, shard_size="20KB")
    print("finished", flush=True)
""")


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_merge_leaves_no_folder_that_looks_complete(artifacts, tmp_path, how):
    base, adapter = artifacts["all_linear"]
    out = tmp_path / "out"
    script = tmp_path / "slow_merge.py"
    script.write_text(SLOW_MERGE)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(script), str(base), str(adapter), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("progress"), first + proc.stderr.read()
        proc.send_signal(getattr(signal, how))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert not out.exists()
    left = leftovers(tmp_path, "out")
    if how == "SIGKILL":
        # nothing can clean up after kill -9; what stays is hidden and named incomplete
        assert all(name.endswith(".incomplete") for name in left)
    else:
        assert left == []


def test_domain_package_imports_no_front_end_libraries():
    code = ("import sys, hub.merge, hub.merge.plan, hub.merge.pipeline, hub.merge.writer, hub.merge.maths;"
            "bad = [m for m in ('click', 'textual', 'sqlalchemy', 'huggingface_hub') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.stdout.strip() == ""


def test_pipeline_result_does_not_depend_on_prefetch_budget(artifacts, tmp_path):
    """A budget smaller than any tensor still makes progress (one tensor at a time)."""
    base, adapter = artifacts["dora"]
    merge(base, [(adapter, 1.0)], tmp_path / "a", device="cpu", prefetch_bytes=1)
    merge(base, [(adapter, 1.0)], tmp_path / "b", device="cpu", prefetch_bytes=1 << 30)
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
