"""`hub add FILE.gguf --base BASE`: a GGUF LoRA (hub's or llama.cpp's converter's) back into
a PEFT adapter in the store, and every bad input refused in one line with nothing changed."""

from __future__ import annotations

import json
import os

import pytest

from tests.gguf_support import peft_deltas, relative, run_converter, targets, tiny_base
from tests.helpers import registry_snapshot, run_cli

TOLERANCE = {"f32": 1e-6, "f16": 1e-2, "bf16": 1e-2, "q8_0": 1e-2}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    from hub.demo.factory import make_adapter

    root = tmp_path_factory.mktemp("gguf-import")
    llama = tiny_base("llama", root / "llama")
    phi3 = tiny_base("phi3", root / "phi3")
    untied = dict(r=4, lora_alpha=4, target_modules=["embed_tokens", "q_proj", "k_proj", "lm_head"])
    return {
        "llama": llama, "phi3": phi3, "qwen2": tiny_base("qwen2", root / "qwen2"),
        "patterns": make_adapter(llama, root / "patterns", seed=1, r=8, lora_alpha=16, use_rslora=True,
                                 target_modules=targets("llama"), rank_pattern={"k_proj": 4, "down_proj": 16},
                                 alpha_pattern={"o_proj": 3}),
        "embed": make_adapter(llama, root / "embed", seed=2, **untied),
        "phi3-lora": make_adapter(phi3, root / "phi3-lora", seed=3, r=4, lora_alpha=8, target_modules=targets("phi3")),
    }


def export_and_import(adapter, base, tmp_path, outtype="f32", name="back"):
    assert run_cli("add", adapter, "--name", "orig").exit_code == 0
    out = tmp_path / f"orig-{outtype}.gguf"
    result = run_cli("export", "orig", out, "--format", "gguf", "--base", base, "--outtype", outtype)
    assert result.exit_code == 0, result.stderr
    result = run_cli("add", out, "--base", base, "--name", name)
    assert result.exit_code == 0, result.stderr
    return out


def stored_deltas(name):
    from hub.service import Hub

    with Hub() as hub:
        return peft_deltas(hub.adapter_dir(name))


@pytest.mark.parametrize("outtype", sorted(TOLERANCE))
def test_round_trip_gives_back_the_deltas(adapters, outtype, tmp_path):
    """rsLoRA, rank and alpha patterns, GQA q/k permutation: what comes back is the same
    delta per module (folded scalings come back as alpha/r with a rank_pattern)."""
    export_and_import(adapters["patterns"], adapters["llama"], tmp_path, outtype)
    original, back = peft_deltas(adapters["patterns"]), stored_deltas("back")
    assert back.keys() == original.keys()
    worst = max(relative(back[m], original[m]) for m in original)
    assert worst < TOLERANCE[outtype], worst


def test_embedding_and_lm_head_on_an_untied_base_round_trip(adapters, tmp_path):
    export_and_import(adapters["embed"], adapters["llama"], tmp_path)
    original, back = peft_deltas(adapters["embed"]), stored_deltas("back")
    assert "model.embed_tokens" in back and "lm_head" in back
    assert max(relative(back[m], original[m]) for m in original) < 1e-6


def test_phi3_fused_projections_round_trip(adapters, tmp_path):
    export_and_import(adapters["phi3-lora"], adapters["phi3"], tmp_path)
    original, back = peft_deltas(adapters["phi3-lora"]), stored_deltas("back")
    assert back.keys() == original.keys() and any(m.endswith("gate_up_proj") for m in back)
    assert max(relative(back[m], original[m]) for m in original) < 1e-6


def test_show_says_it_came_from_gguf_with_the_files_hash(adapters, tmp_path):
    import hashlib

    out = export_and_import(adapters["patterns"], adapters["llama"], tmp_path)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    doc = json.loads(run_cli("show", "back", "--json").stdout)
    assert doc["lineage"] == [{"type": "gguf", "name": out.name, "sha256": digest, "weight": None, "present": False}]
    text = run_cli("show", "back").stdout
    assert f"converted from gguf {out.name} (sha256 {digest})" in text


def test_llama_cpps_converter_file_imports(adapters, tmp_path):
    from hub.demo.factory import make_adapter

    plain = make_adapter(adapters["llama"], tmp_path / "plain", seed=5, r=4, lora_alpha=8,
                         target_modules=targets("llama"), rank_pattern={"v_proj": 2})
    theirs = run_converter(plain, adapters["llama"], tmp_path / "cpp.gguf")
    result = run_cli("add", theirs, "--base", adapters["llama"], "--name", "from-cpp")
    assert result.exit_code == 0, result.stderr
    original, back = peft_deltas(plain), stored_deltas("from-cpp")
    assert max(relative(back[m], original[m]) for m in original) < 1e-6


def one_line_and_nothing_changed(args, home, *needles):
    before = registry_snapshot(home)
    result = run_cli(*args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert registry_snapshot(home) == before
    return lines[0]


def test_bad_inputs_are_one_line_and_register_nothing(adapters, tmp_path, hub_home):
    from hub.demo.smollm import gguf_path

    good = export_and_import(adapters["patterns"], adapters["llama"], tmp_path)
    llama = str(adapters["llama"])
    # a model, not an adapter
    one_line_and_nothing_changed(["add", gguf_path(), "--base", llama], hub_home, "not a LoRA adapter")
    # an adapter for another architecture (llama file, qwen2 base)
    one_line_and_nothing_changed(["add", good, "--base", adapters["qwen2"]], hub_home, "'llama'", "'qwen2'")
    # the right architecture but another model's shapes: tensors without a module
    one_line_and_nothing_changed(["add", good, "--base", adapters["phi3"]], hub_home, "architecture")
    # truncated, at several points
    data = good.read_bytes()
    for cut in (10, 100, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut-{cut}.gguf"
        bad.write_bytes(data[:cut])
        one_line_and_nothing_changed(["add", bad, "--base", llama], hub_home, str(bad))
    # not GGUF at all, a FIFO, a header claiming billions of tensors
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04" + bytes(100))
    one_line_and_nothing_changed(["add", junk, "--base", llama], hub_home, "not a GGUF file")
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    one_line_and_nothing_changed(["add", fifo, "--base", llama], hub_home, "not a regular file")
    huge = tmp_path / "huge.gguf"
    huge.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**40).to_bytes(8, "little") + (1).to_bytes(8, "little"))
    one_line_and_nothing_changed(["add", huge, "--base", llama], hub_home, "implausible")
    # converted files are stored, never linked; and the base is required
    one_line_and_nothing_changed(["add", good, "--base", llama, "--link"], hub_home, "--link")
    one_line_and_nothing_changed(["add", good], hub_home, "--base")
