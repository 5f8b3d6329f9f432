"""hub.compat rules beyond the crossed PEFT matrix: adapter <-> adapter (against PEFT's
add_weighted_adapter and hub's own combine engine), runtime lint, quantized and tied
bases, checkpoint layouts, registry round-trips and the findings catalog."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hub.compat import (AdapterSpec, BaseSpec, check_adapter_base, check_adapters, check_runtime,
                        fits)
from hub.findings import CODES, render_docs
from hub.errors import UsageError
from hub.formats.base_model import read_base_model
from hub.inspect import inspect_adapter

REPO = Path(__file__).resolve().parents[1]


def spec(folder, name=None) -> AdapterSpec:
    return AdapterSpec.from_info(inspect_adapter(folder), name or Path(folder).name)


def base_spec(folder, name=None) -> BaseSpec:
    return BaseSpec.from_info(read_base_model(folder), name or Path(folder).name)


def codes(findings) -> set[str]:
    return {f.code for f in findings}


# -- catalog ------------------------------------------------------------------------------

def test_findings_doc_is_generated_from_the_catalog():
    assert (REPO / "docs" / "findings.md").read_text() == render_docs()
    for code, c in CODES.items():
        assert c.severity in ("error", "warning", "info"), code
        assert code.isupper() and " " not in code


def test_compat_imports_no_frontend_or_heavy_library():
    code = ("import sys, hub.compat, hub.compat.adapter_base, hub.compat.runtime, hub.compat.adapter_adapter;"
            "bad = [m for m in ('click', 'textual', 'sqlalchemy', 'huggingface_hub', 'torch', 'transformers', 'peft')"
            " if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""


# -- registry round trip: the fast path sees the same data as the file path ---------------

def test_specs_from_registry_json_give_the_same_findings(artifacts):
    base_dir, adapter_dir = artifacts["embedding"]
    info = inspect_adapter(adapter_dir)
    base = read_base_model(base_dir)
    modules = {p: vars(m) for p, m in info.modules.items()}
    from_rows = check_adapter_base(
        AdapterSpec.from_json("e", json.dumps(info.config), json.dumps(modules),
                              json.dumps({k: list(v) for k, v in info.saved_tensors.items()}), info.dtype),
        BaseSpec.from_row({"name": "b", "shapes_json": BaseSpec.shapes_json(base), "config_json": json.dumps(base.config),
                           "model_type": base.model_type, "architecture": base.architecture, "dtype": base.dtype,
                           "vocab_size": base.vocab_size, "hidden_size": base.hidden_size,
                           "num_layers": base.num_layers, "tie_word_embeddings": base.tie_word_embeddings,
                           "quantization_json": None, "path": base.path, "shape_signature": base.shape_signature,
                           "size_bytes": base.size_bytes}))
    from_files = check_adapter_base(AdapterSpec.from_info(info, "e"), BaseSpec.from_info(base, "b"))
    assert from_rows == from_files


def test_sharded_base_reads_like_a_single_file(artifacts, tmp_path):
    from hub.demo.factory import make_base

    sharded = make_base("llama", tmp_path / "sharded", max_shard_size="100KB")
    assert (sharded / "model.safetensors.index.json").exists()
    single = read_base_model(artifacts.base("llama"))
    info = read_base_model(sharded)
    assert len(info.shards) > 1
    assert info.shape_signature == single.shape_signature
    assert info.modules == single.modules
    _, adapter = artifacts["patterns"]
    on_sharded = check_adapter_base(spec(adapter, "p"), BaseSpec.from_info(info, "b"))
    on_single = check_adapter_base(spec(adapter, "p"), BaseSpec.from_info(single, "b"))
    # the adapter names the single-file folder; only that note may differ
    assert [f for f in on_sharded if f.code != "BASE_NAME_DIFFERS"] == on_single


# -- layouts: Conv1D, prefix-less checkpoints, tied heads -----------------------------------

def test_gpt2_checkpoint_without_wrapper_prefix(artifacts, tmp_path):
    """openai-community/gpt2 stores h.0.attn.c_attn.weight, not transformer.h.0...: PEFT
    loads the adapter on it, and hub must see the modules too."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir, adapter_dir = artifacts["gpt2"]
    bare = tmp_path / "gpt2-bare"
    bare.mkdir()
    (bare / "config.json").write_text((base_dir / "config.json").read_text())
    tensors = load_file(str(base_dir / "model.safetensors"))
    save_file({k.removeprefix("transformer."): v for k, v in tensors.items()}, str(bare / "model.safetensors"),
              metadata={"format": "pt"})
    model = AutoModelForCausalLM.from_pretrained(bare, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, adapter_dir)
    peft_model(torch.tensor([[1, 2, 3]]))
    findings = check_adapter_base(spec(adapter_dir), base_spec(bare))
    assert fits(findings), findings
    assert base_spec(bare).modules["h.0.attn.c_attn"].kind == "conv1d"


def test_conv1d_fan_in_fan_out_flag_corrected_by_peft(artifacts, tmp_path):
    """A GPT-2 adapter whose config says fan_in_fan_out=false (hand-edited, or from an old
    tool): PEFT corrects the flag with a warning and loads it; hub notes it, still fits."""
    import shutil

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir, original = artifacts["gpt2"]
    folder = tmp_path / "noflag"
    shutil.copytree(original, folder)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**cfg, "fan_in_fan_out": False}))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PeftModel.from_pretrained(model, folder)(torch.tensor([[1, 2, 3]]))
    assert any("fan_in_fan_out" in str(w.message) for w in caught)
    findings = check_adapter_base(spec(folder), base_spec(base_dir))
    assert fits(findings)
    assert "FAN_IN_FAN_OUT_CORRECTED" in codes(findings)


def test_tied_embeddings_are_called_out(artifacts, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from hub.demo.factory import make_adapter

    base_dir = artifacts.base("qwen2")
    head = make_adapter(base_dir, tmp_path / "head", r=4, lora_alpha=8, target_modules=["lm_head", "q_proj"])
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    PeftModel.from_pretrained(model, head)(torch.tensor([[1, 2]]))   # PEFT serves it
    for folder in (head, artifacts["embedding"][1], artifacts["modules_to_save"][1]):
        findings = check_adapter_base(spec(folder), base_spec(base_dir))
        assert fits(findings), findings
        tied = [f for f in findings if f.code == "TIED_EMBEDDINGS"]
        assert tied and tied[0].severity == "warning"
    # an untied base has nothing to say
    assert "TIED_EMBEDDINGS" not in codes(check_adapter_base(spec(artifacts["embedding"][1]),
                                                             base_spec(artifacts.base("llama"))))


def test_layers_to_transform_beyond_the_base(artifacts, tmp_path):
    from hub.demo.factory import make_adapter

    folder = make_adapter(artifacts.base("llama", num_hidden_layers=3), tmp_path / "l2", r=4, lora_alpha=8,
                          target_modules=["q_proj"], layers_to_transform=[2])
    findings = check_adapter_base(spec(folder), base_spec(artifacts.base("llama")))
    assert {"LAYERS_TO_TRANSFORM_OUT_OF_RANGE", "LAYERS_BEYOND_BASE"} <= codes(findings)
    # on its own base it fits, and PEFT's layer filter is replayed (layers 0-1 untouched)
    assert fits(check_adapter_base(spec(folder), base_spec(artifacts.base("llama", num_hidden_layers=3))))


def test_findings_group_layers_into_one_template(artifacts):
    _, adapter = artifacts["plain"]
    findings = check_adapter_base(spec(adapter), base_spec(artifacts.base("llama", hidden_size=96)))
    q = [f for f in findings if f.module == "model.layers.*.self_attn.q_proj"]
    assert len(q) == 1 and "layers 0-1" in q[0].message


def test_dtype_and_dora_notes(artifacts, tmp_path):
    from hub.demo.factory import make_base

    bf16 = make_base("llama", tmp_path / "bf16", dtype=torch.bfloat16)
    findings = check_adapter_base(spec(artifacts["dora"][1]), base_spec(bf16))
    assert fits(findings)
    assert {"DTYPE_DIFFERS", "DORA_BASE_SPECIFIC"} <= codes(findings)


def test_declared_base_name_only_informs(artifacts):
    _, adapter = artifacts["plain"]
    a = spec(adapter)
    other = BaseSpec.from_info(read_base_model(artifacts.base("llama", vocab_size=160)), "some-other-llama")
    findings = check_adapter_base(a, other)
    assert fits(findings) and "BASE_NAME_DIFFERS" in codes(findings)


# -- quantized bases ------------------------------------------------------------------------

def _quantized_copy(base_dir: Path, out: Path, layout: str) -> Path:
    """The llama base in a quantized checkpoint layout. The packed values are not a real
    quantization (no GPTQ/AWQ/bitsandbytes kernel runs here), the layout is: names,
    dtypes and shapes as those libraries write them."""
    out.mkdir()
    cfg = json.loads((base_dir / "config.json").read_text())
    tensors = load_file(str(base_dir / "model.safetensors"))
    result = {}
    for name, t in tensors.items():
        path = name.removesuffix(".weight")
        if ".layers." not in name or t.dim() != 2:
            result[name] = t
            continue
        o, i = t.shape
        if layout == "gptq":   # qweight (in*bits/32, out) int32, qzeros, scales (in/group, out), g_idx (in,)
            result[f"{path}.qweight"] = torch.zeros(i * 4 // 32, o, dtype=torch.int32)
            result[f"{path}.qzeros"] = torch.zeros(i // 32, o * 4 // 32, dtype=torch.int32)
            result[f"{path}.scales"] = torch.ones(i // 32, o, dtype=torch.float16)
            result[f"{path}.g_idx"] = torch.zeros(i, dtype=torch.int32)
        elif layout == "awq":  # qweight (in, out*bits/32), qzeros, scales (in/group, out)
            result[f"{path}.qweight"] = torch.zeros(i, o * 4 // 32, dtype=torch.int32)
            result[f"{path}.qzeros"] = torch.zeros(i // 32, o * 4 // 32, dtype=torch.int32)
            result[f"{path}.scales"] = torch.ones(i // 32, o, dtype=torch.float16)
        else:                  # bitsandbytes nf4: flattened uint8 + JSON quant_state with the shape
            result[name] = torch.zeros(o * i // 2, 1, dtype=torch.uint8)
            result[f"{name}.absmax"] = torch.ones(o * i // 64)
            result[f"{name}.quant_map"] = torch.ones(16)
            state = json.dumps({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [o, i]})
            result[f"{name}.quant_state.bitsandbytes__nf4"] = torch.tensor(list(state.encode()), dtype=torch.uint8)
    cfg["quantization_config"] = {"gptq": {"quant_method": "gptq", "bits": 4, "group_size": 32},
                                  "awq": {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm"},
                                  "bnb": {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                          "bnb_4bit_quant_type": "nf4"}}[layout]
    (out / "config.json").write_text(json.dumps(cfg))
    save_file(result, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.mark.parametrize("layout", ["gptq", "awq", "bnb"])
def test_quantized_base_layouts_and_policy(artifacts, tmp_path, layout):
    plain_base = artifacts.base("llama")
    q = _quantized_copy(plain_base, tmp_path / layout, layout)
    q_spec = base_spec(q)
    plain = base_spec(plain_base)
    for path, m in plain.modules.items():          # logical in/out seen through the packing
        assert (q_spec.modules[path].in_features, q_spec.modules[path].out_features) == \
            (m.in_features, m.out_features), path
    findings = check_adapter_base(spec(artifacts["plain"][1]), q_spec)
    assert fits(findings), findings
    policy = [f for f in findings if f.code == "QUANTIZED_BASE"]
    assert policy
    if layout == "bnb":   # hub merges into bitsandbytes checkpoints and says with which scheme
        assert "bitsandbytes 4-bit checkpoint (nf4" in policy[0].message and "--requantize" in policy[0].message
    else:
        assert "merges only into full-precision or bitsandbytes" in policy[0].message
        assert "float16" in policy[0].message
    assert read_base_model(q).param_count == read_base_model(plain_base).param_count
    wrong = artifacts.adapter("llama", "h96-q", base_overrides={"hidden_size": 96}, r=4, lora_alpha=8,
                              target_modules=["q_proj"])
    assert not fits(check_adapter_base(spec(wrong), q_spec))


# -- adapter <-> adapter ------------------------------------------------------------------

def test_hub_method_rules_come_from_the_method_declarations():
    from hub.combine.registry import all_methods
    from hub.compat import method_rules

    hub_rules = {n: r for n, r in method_rules().items() if r.engine == "hub"}
    assert set(hub_rules) == {m.name for m in all_methods()}
    for m in all_methods():
        rule = hub_rules[m.name]
        assert (rule.exact, rule.rank, rule.equal_ranks) == (m.exact, "sum" if m.exact else "k", False), m.name


def _peft_with(base_dir, adapters: dict):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    names = list(adapters)
    peft_model = PeftModel.from_pretrained(model, adapters[names[0]], adapter_name=names[0])
    for n in names[1:]:
        peft_model.load_adapter(adapters[n], adapter_name=n)
    return peft_model


@pytest.mark.parametrize("ctype", ["linear", "ties", "cat", "svd"])
def test_peft_methods_agree_with_add_weighted_adapter(artifacts, tmp_path, ctype):
    """Where hub says a PEFT method cannot combine the adapters, add_weighted_adapter raises;
    where it says it can, PEFT combines them into the rank hub announced."""
    from hub.demo.factory import make_adapter

    base_dir, plain = artifacts["plain"]                       # r=8 on q/v
    r4 = make_adapter(base_dir, tmp_path / "r4", seed=3, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    r8 = make_adapter(base_dir, tmp_path / "r8", seed=4, r=8, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    for other in (r4, r8):
        findings = check_adapters([spec(plain, "a"), spec(other, "b")], f"peft:{ctype}")
        peft_model = _peft_with(base_dir, {"a": plain, "b": other})
        kwargs = {"density": 0.5} if ctype == "ties" else {}
        try:
            peft_model.add_weighted_adapter(["a", "b"], [0.5, 0.5], "mix", combination_type=ctype, **kwargs)
        except ValueError as exc:
            assert not fits(findings) and "RANKS_DIFFER" in codes(findings), exc
            continue
        assert fits(findings), findings
        announced = next(f for f in findings if f.code == "RESULT_RANK").message
        assert f"gives rank {peft_model.peft_config['mix'].r}:" in announced


def test_dora_cannot_be_combined_and_peft_drops_it_silently(artifacts):
    base_dir, dora = artifacts["dora"]
    plain = artifacts["plain"][1]
    findings = check_adapters([spec(dora, "d"), spec(plain, "p")], "peft:cat")
    assert "DORA_NOT_COMBINABLE" in codes(findings) and not fits(findings)
    peft_model = _peft_with(base_dir, {"d": dora, "p": plain})
    peft_model.add_weighted_adapter(["d", "p"], [1.0, 1.0], "mix", combination_type="cat")   # no complaint
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    trained, mixed = layer.lora_magnitude_vector["d"].weight, layer.lora_magnitude_vector["mix"].weight
    assert not torch.allclose(trained, mixed)       # the trained magnitudes did not make it into the mix
    # hub's own engine refuses it, as the finding says
    from hub.combine.engine import Parent, combine
    from hub.combine.factors import load_factors
    from hub.errors import Unsupported

    with pytest.raises(Unsupported):
        combine([Parent(load_factors(dora, "d"), 1.0), Parent(load_factors(plain, "p"), 1.0)], "linear")


def test_hub_linear_result_rank_and_scaling_normalisation(artifacts):
    """hub's linear takes any ranks and folds rsLoRA/alpha scaling: the announced rank
    is what the combine engine produces."""
    from hub.combine.engine import Parent, combine
    from hub.combine.factors import load_factors

    rs, pat = artifacts["rslora"][1], artifacts["patterns"][1]
    findings = check_adapters([spec(rs, "rs"), spec(pat, "pat")], "linear")
    assert fits(findings)
    assert {"SCALING_DIFFERS", "RESULT_RANK", "TARGETS_DIFFER"} <= codes(findings)
    result = combine([Parent(load_factors(rs, "rs"), 1.0), Parent(load_factors(pat, "pat"), 1.0)], "linear")
    ranks = [m.rank for m in result.modules]
    announced = next(f for f in findings if f.code == "RESULT_RANK").message
    assert f"gives rank {min(ranks)}-{max(ranks)} (per module)" in announced


def test_adapters_for_different_bases(artifacts):
    plain = spec(artifacts["plain"][1], "plain")
    wide = spec(artifacts.adapter("llama", "wide", base_overrides={"hidden_size": 96}, r=8, lora_alpha=16,
                                  target_modules=["q_proj", "v_proj"]), "wide")
    assert "SHAPES_CONFLICT" in codes(check_adapters([plain, wide], "linear"))
    assert "ARCHITECTURES_DIFFER" in codes(check_adapters([plain, spec(artifacts["gpt2"][1], "g")], "linear"))
    assert "NO_COMMON_BASE" in codes(check_adapters([plain, plain], "linear", base_fits=[{"a"}, {"b"}]))
    both = check_adapters([plain, spec(artifacts["modules_to_save"][1], "m"), spec(artifacts["modules_to_save"][1], "n")],
                          "cat")
    assert "MODULES_TO_SAVE_CONFLICT" in codes(both) and not fits(both)


def test_unknown_method_and_single_adapter_are_usage_errors(artifacts):
    plain = spec(artifacts["plain"][1])
    with pytest.raises(UsageError):
        check_adapters([plain, plain], "average")
    with pytest.raises(UsageError):
        check_adapters([plain], "linear")


# -- runtime lint ---------------------------------------------------------------------------

def test_vllm_rank_limit_and_flag(artifacts, tmp_path):
    from hub.demo.factory import make_adapter

    base = artifacts.base("llama")
    assert check_runtime(spec(artifacts["plain"][1]), "vllm") == []            # r=8
    r16 = make_adapter(base, tmp_path / "r16", r=16, lora_alpha=16, target_modules=["q_proj"])
    assert check_runtime(spec(r16), "vllm") == []
    r24 = make_adapter(base, tmp_path / "r24", r=24, lora_alpha=16, target_modules=["q_proj"])
    found = check_runtime(spec(r24), "vllm")
    assert [f.code for f in found] == ["VLLM_RANK_ABOVE_DEFAULT"]
    assert "--max-lora-rank 32" in found[0].message


@pytest.mark.parametrize("kind, runtime, expected", [
    ("dora", "vllm", {"VLLM_DORA"}),
    ("modules_to_save", "vllm", {"VLLM_MODULES_TO_SAVE"}),
    ("embedding", "vllm", {"VLLM_EMBEDDING_LORA"}),
    ("rslora", "vllm", set()),                       # vLLM applies alpha/sqrt(r) itself
    ("rslora", "llama.cpp", {"LLAMACPP_RSLORA", "LLAMACPP_BASE_UNKNOWN"}),
    ("patterns", "llama.cpp", {"LLAMACPP_ALPHA_PATTERN", "LLAMACPP_BASE_UNKNOWN"}),
    ("dora", "llama.cpp", {"LLAMACPP_DORA", "LLAMACPP_BASE_UNKNOWN"}),
    ("modules_to_save", "ollama", {"LLAMACPP_MODULES_TO_SAVE", "LLAMACPP_BASE_UNKNOWN"}),
    ("embedding", "llama.cpp", {"LLAMACPP_BASE_UNKNOWN"}),   # its saved base layer is skipped by the converter
    ("plain", "llama.cpp", {"LLAMACPP_BASE_UNKNOWN"}),
    ("plain", "peft", set()),
])
def test_runtime_lint(artifacts, kind, runtime, expected):
    assert codes(check_runtime(spec(artifacts[kind][1]), runtime)) == expected


def test_lora_bias_runtime_and_combination(artifacts):
    folder = artifacts.adapter("llama", "bias", r=4, lora_alpha=8, target_modules=["q_proj"], lora_bias=True)
    a = spec(folder)
    assert "LLAMACPP_LORA_BIAS" in codes(check_runtime(a, "llama.cpp"))
    assert "VLLM_LORA_BIAS" in codes(check_runtime(a, "vllm"))
    plain = spec(artifacts["plain"][1])
    assert "LORA_BIAS_COMBINED" in codes(check_adapters([a, plain], "linear"))
    assert "LORA_BIAS_DROPPED" in codes(check_adapters([a, plain], "peft:cat"))


def test_unknown_runtime_is_a_usage_error(artifacts):
    with pytest.raises(UsageError):
        check_runtime(spec(artifacts["plain"][1]), "tgi")
