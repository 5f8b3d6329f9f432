"""`hub export NAME FILE.gguf --format gguf` on tiny models of every covered architecture.

References: the ``gguf`` package's TensorNameMap (what llama.cpp's converter names the
base's weights) and llama.cpp's own convert_lora_to_gguf.py, run on the same adapter:
hub's file must hold the same tensors, bit for bit, where the converter is right (plain
and rank-pattern adapters). The numbers in llama.cpp itself: test_gguf_llama_cpp.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hub.formats.gguf import convert, layout
from tests.gguf_support import (ARCHES, gguf_fields, gguf_tensors, peft_deltas, relative, run_converter, targets,
                                tiny_base)
from tests.helpers import registry_snapshot, run_cli


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf-tiny")
    cache = {}

    def get(name: str, kind: str = "plain"):
        key = (name, kind)
        if key not in cache:
            from hub.demo.factory import make_adapter

            base = tiny_base(name, root / f"base-{name}")
            lora = {"plain": dict(r=4, lora_alpha=8, target_modules=targets(name)),
                    "pattern": dict(r=4, lora_alpha=8, target_modules=targets(name),
                                    rank_pattern={targets(name)[0]: 2, "down_proj": 8}),
                    "rslora": dict(r=4, lora_alpha=8, target_modules=targets(name), use_rslora=True),
                    "alpha_pattern": dict(r=4, lora_alpha=8, target_modules=targets(name),
                                          rank_pattern={"down_proj": 8}, alpha_pattern={"o_proj": 2})}[kind]
            cache[key] = (base, make_adapter(base, root / f"{name}-{kind}", seed=len(cache) + 1, **lora))
        return cache[key]
    return get


def gguf_arch_id(name: str):
    import gguf

    return {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[name]


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_tensor_names_are_llama_cpps(arch, tmp_path):
    """Every adaptable module's GGUF name is the one gguf's TensorNameMap (the converter's
    table) gives the base weight, for the family llama.cpp converts this architecture as."""
    import gguf
    from transformers import AutoModelForCausalLM

    base = tiny_base(arch, tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    hf_arch, family = layout.family_of(config)
    assert family is not None, hf_arch
    names = gguf.get_tensor_name_map(gguf_arch_id(family.gguf_arch), config["num_hidden_layers"])
    model = AutoModelForCausalLM.from_config(AutoModelForCausalLM.from_pretrained(base).config)
    paths = [p for p, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    assert paths
    for path in paths:
        expected = names.get_name(f"{path}.weight", try_suffixes=(".weight",))
        assert layout.tensor_name(path, family) == expected, path
        if expected:
            assert layout.module_path(expected, fused=arch == "phi3") == path


def test_permutation_is_the_converters_and_inverts():
    """The converter's LlamaModel.permute, written out: within a head, rows [0..d/2) and
    [d/2..d) become interleaved pairs (GQA: k grouped by the kv heads)."""
    n_head, head_dim = 3, 8
    rows = torch.arange(n_head * head_dim, dtype=torch.float64)[:, None]
    permuted = convert.permute_rows(rows, n_head).flatten().tolist()
    first = [0, 4, 1, 5, 2, 6, 3, 7]
    assert permuted[:8] == first and permuted[8:16] == [r + 8 for r in first]
    b = torch.randn(n_head * head_dim, 5, dtype=torch.float64)
    assert torch.equal(convert.unpermute_rows(convert.permute_rows(b, n_head), n_head), b)


@pytest.mark.parametrize("arch, kind", [("llama", "plain")] + [(arch, "pattern") for arch in sorted(ARCHES)])
def test_export_equals_llama_cpps_converter(tiny, arch, kind, tmp_path):
    base, adapter = tiny(arch, kind)
    assert run_cli("add", adapter, "--name", "a").exit_code == 0
    result = run_cli("export", "a", tmp_path / "hub.gguf", "--format", "gguf", "--base", base)
    assert result.exit_code == 0, result.stderr
    theirs = gguf_tensors(run_converter(adapter, base, tmp_path / "cpp.gguf"))
    ours = gguf_tensors(tmp_path / "hub.gguf")
    assert sorted(ours) == sorted(theirs)
    for name, (qtype, data) in ours.items():
        assert qtype == theirs[name][0] == "F32", name
        assert np.array_equal(data, theirs[name][1]), name
    mine, cpp = gguf_fields(tmp_path / "hub.gguf"), gguf_fields(tmp_path / "cpp.gguf")
    for key in ("general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"):
        assert mine[key] == cpp[key], key


@pytest.mark.parametrize("outtype", ["f16", "bf16", "q8_0"])
def test_outtypes_equal_the_converters(tiny, outtype, tmp_path):
    """q8_0 keeps tensors whose rows are not whole 32-blocks (lora_b: rows of r) in F16, as
    the converter does; every other byte is the same too."""
    base, adapter = tiny("llama", "pattern")
    assert run_cli("add", adapter, "--name", "a").exit_code == 0
    result = run_cli("export", "a", tmp_path / "hub.gguf", "--format", "gguf", "--base", base, "--outtype", outtype)
    assert result.exit_code == 0, result.stderr
    theirs = gguf_tensors(run_converter(adapter, base, tmp_path / "cpp.gguf", outtype))
    ours = gguf_tensors(tmp_path / "hub.gguf")
    types = {q for q, _ in ours.values()}
    assert types == ({"Q8_0", "F16"} if outtype == "q8_0" else {outtype.upper()})
    for name, (qtype, data) in ours.items():
        assert (qtype, data.tobytes()) == (theirs[name][0], theirs[name][1].tobytes()), name


@pytest.mark.parametrize("kind", ["rslora", "alpha_pattern"])
def test_rslora_and_alpha_patterns_are_folded_exactly(tiny, kind, tmp_path):
    """llama.cpp applies alpha/r per pair: hub folds PEFT's own scaling into lora_b, so
    alpha/r * b a (un-permuted) is PEFT's delta for every module."""
    base, adapter = tiny("llama", kind)
    assert run_cli("add", adapter, "--name", "a").exit_code == 0
    assert run_cli("export", "a", tmp_path / "a.gguf", "--format", "gguf", "--base", base).exit_code == 0
    fields, tensors = gguf_fields(tmp_path / "a.gguf"), gguf_tensors(tmp_path / "a.gguf")
    config = json.loads((base / "config.json").read_text())
    family = layout.family_of(config)[1]
    for module, delta in peft_deltas(adapter).items():
        stem = layout.tensor_name(module)
        a = torch.from_numpy(tensors[f"{stem}.lora_a"][1]).double()
        b = torch.from_numpy(tensors[f"{stem}.lora_b"][1]).double()
        heads = layout.qk_heads(module, config, family)
        if heads:
            b = convert.unpermute_rows(b, heads)
        got = fields["adapter.lora.alpha"] / b.shape[1] * (b @ a)
        assert relative(got, delta) < 1e-6, module


def test_what_llama_cpp_cannot_hold_is_refused_and_nothing_is_written(artifacts, tmp_path, hub_home):
    tied = artifacts.base("llama", tie_word_embeddings=True)
    embed_on_tied = artifacts.adapter("llama", "gguf-embed-tied", r=4, lora_alpha=4,
                                      target_modules=["embed_tokens", "q_proj"],
                                      base_overrides={"tie_word_embeddings": True})
    cases = [(artifacts["dora"][1], artifacts.base("llama"), "LLAMACPP_DORA", "hub merge"),
             (artifacts["modules_to_save"][1], artifacts.base("llama"), "LLAMACPP_MODULES_TO_SAVE", "hub merge"),
             (artifacts["gpt2"][1], artifacts.base("gpt2"), "LLAMACPP_ARCHITECTURE", "hub merge"),
             (embed_on_tied, tied, "LLAMACPP_TIED_EMBEDDING", "hub merge")]
    for i, (adapter, base, code, fix) in enumerate(cases):
        assert run_cli("add", adapter, "--name", f"x{i}").exit_code == 0
        before = registry_snapshot(hub_home)
        out = tmp_path / f"x{i}.gguf"
        result = run_cli("export", f"x{i}", out, "--format", "gguf", "--base", base)
        assert result.exit_code != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and code in lines[0] and fix in lines[0], result.stderr
        assert not out.exists() and not list(tmp_path.glob(".*incomplete*"))
        assert registry_snapshot(hub_home) == before


KINDS = ["plain", "rslora", "dora", "patterns", "modules_to_save", "embedding", "all_linear", "qwen2", "gpt2"]


def test_check_never_says_yes_where_export_says_no(artifacts, tmp_path):
    """One rule set: the export writes exactly when `hub check --base B` and `hub check
    --runtime llama.cpp --base B` both say yes, for every adapter kind against every base."""
    bases = {"llama": artifacts.base("llama"), "qwen2": artifacts.base("qwen2"), "gpt2": artifacts.base("gpt2"),
             "tied": artifacts.base("llama", tie_word_embeddings=True)}
    for kind in KINDS:
        assert run_cli("add", artifacts[kind][1], "--name", kind).exit_code == 0
    seen = set()
    for kind in KINDS:
        for base_name, base in bases.items():
            checked = run_cli("check", kind, "--runtime", "llama.cpp", "--base", base, "--json")
            fits_base = run_cli("check", kind, "--base", base, "--json").exit_code == 0
            runtime_ok = all(f["severity"] != "error" for f in json.loads(checked.stdout)["findings"]
                             if f["code"].startswith("LLAMACPP_"))
            out = tmp_path / f"{kind}-{base_name}.gguf"
            exported = run_cli("export", kind, out, "--format", "gguf", "--base", base).exit_code == 0
            assert exported == (runtime_ok and fits_base), (kind, base_name)
            assert exported == out.exists()
            seen.add(exported)
    assert seen == {True, False}


def test_the_command_a_refusal_names_makes_the_adapter_exportable(artifacts, tmp_path):
    """DoRA is refused with `hub fix NAME --runtime llama.cpp --base BASE`; its result exports."""
    base = artifacts.base("llama")
    assert run_cli("add", artifacts["dora"][1], "--name", "d").exit_code == 0
    refused = run_cli("export", "d", tmp_path / "d.gguf", "--format", "gguf", "--base", base)
    assert refused.exit_code != 0 and "hub fix d --runtime llama.cpp --base BASE" in refused.stderr
    fixed = run_cli("fix", "d", "--runtime", "llama.cpp", "--base", base, "--name", "d-plain")
    assert fixed.exit_code == 0, fixed.stderr
    done = run_cli("export", "d-plain", tmp_path / "d.gguf", "--format", "gguf", "--base", base)
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "d.gguf").is_file()
