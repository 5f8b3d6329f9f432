"""hub's adapter <-> base verdict against PEFT itself, on real tiny bases and real
PEFT adapters, crossed.

The oracle loads every adapter on every base with ``PeftModel.from_pretrained`` and
classifies what happened:

- ``load_error``: from_pretrained raised (size mismatch, no matching target modules);
- ``dropped``: it loaded, but tensors from the adapter file never reached the model
  (PEFT ignores them without a word: modules unadapted);
- ``missing``: it loaded, but PEFT put LoRA layers on modules the file has no weights
  for (PEFT only warns "Found missing adapter keys");
- ``loads``: every tensor landed, nothing is missing, and a forward pass runs.

hub must call exactly the ``loads`` cases compatible, and its error codes must name
the failure PEFT showed, on the modules where it happened.
"""

from __future__ import annotations

import fnmatch
import json
import warnings
from dataclasses import dataclass, field

import pytest
import torch

from hub.compat import AdapterSpec, BaseSpec, check_adapter_base, fits
from hub.formats.base_model import read_base_model
from hub.inspect import inspect_adapter

# base name -> (factory kind, config overrides): same architecture with another hidden
# size, another vocabulary, MHA instead of GQA, more and fewer layers; GPT-2 Conv1D.
BASES = {
    "llama": ("llama", {}),
    "llama-h96": ("llama", {"hidden_size": 96}),
    "llama-v160": ("llama", {"vocab_size": 160}),
    "llama-mha": ("llama", {"num_key_value_heads": 4}),
    "llama-3layers": ("llama", {"num_hidden_layers": 3}),
    "llama-1layer": ("llama", {"num_hidden_layers": 1}),
    "qwen2-tied": ("qwen2", {}),
    "gpt2": ("gpt2", {}),
    "gpt2-h96": ("gpt2", {"n_embd": 96}),
}
ADAPTERS = ["plain", "rslora", "dora", "patterns", "modules_to_save", "embedding", "all_linear", "gpt2", "qwen2"]

SHAPE_CODES = {"SHAPE_MISMATCH", "KV_HEADS_MISMATCH", "VOCAB_MISMATCH", "SAVED_TENSOR_SHAPE", "MODULE_KIND_MISMATCH"}
DROP_CODES = {"LAYERS_BEYOND_BASE", "MODULE_NOT_IN_BASE", "WEIGHTS_NOT_TARGETED", "NO_MODULE_IN_BASE"}


@dataclass
class Outcome:
    kind: str                                   # loads | load_error | dropped | missing
    error: str = ""
    dropped: set[str] = field(default_factory=set)   # module paths whose tensors were ignored
    missing: set[str] = field(default_factory=set)   # module paths wrapped without weights
    warned_missing: bool = False


def _module_of(key: str) -> str:
    name = key.removeprefix("base_model.model.")
    for part in (".lora_A", ".lora_B", ".lora_embedding_A", ".lora_embedding_B", ".lora_magnitude_vector",
                 ".base_layer.weight", ".weight"):
        if part in name:
            return name.split(part)[0]
    return name


_OUTCOMES: dict[tuple[str, str], Outcome] = {}


def peft_outcome(base_dir, adapter_dir) -> Outcome:
    key = (str(base_dir), str(adapter_dir))
    if key in _OUTCOMES:
        return _OUTCOMES[key]
    from peft import PeftModel
    from peft.utils.save_and_load import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            peft_model = PeftModel.from_pretrained(model, adapter_dir)
        except Exception as exc:  # noqa: BLE001 - the oracle records whatever PEFT raises
            _OUTCOMES[key] = Outcome("load_error", f"{type(exc).__name__}: {exc}")
            return _OUTCOMES[key]
    warned = any("Found missing adapter keys" in str(w.message) for w in caught)
    saved = load_file(str(adapter_dir / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(peft_model, save_embedding_layers=True)
    dropped = {_module_of(k) for k in saved if k not in loaded}
    missing = {_module_of(k) for k in loaded if k not in saved and "lora_" in k}
    for k in saved.keys() & loaded.keys():
        assert torch.equal(saved[k], loaded[k].to(saved[k].dtype)), f"{k} did not load verbatim"
    with torch.no_grad():
        peft_model(torch.tensor([[1, 2, 3, 4]]))
    kind = "dropped" if dropped else "missing" if missing else "loads"
    _OUTCOMES[key] = Outcome(kind, dropped=dropped, missing=missing, warned_missing=warned)
    return _OUTCOMES[key]


def covered(module: str, findings, codes) -> bool:
    """Is ``module`` named by a finding with one of ``codes`` (templates use *)?"""
    for f in findings:
        if f.code in codes and f.module and any(fnmatch.fnmatchcase(module, m.strip())
                                                for m in f.module.split(",")):
            return True
    return False


@pytest.fixture(scope="module")
def bases(artifacts):
    return {name: artifacts.base(kind, **over) for name, (kind, over) in BASES.items()}


@pytest.fixture(scope="module")
def base_specs(bases):
    return {name: BaseSpec.from_info(read_base_model(path), name) for name, path in bases.items()}


@pytest.mark.parametrize("base_name", list(BASES))
@pytest.mark.parametrize("kind", ADAPTERS)
def test_verdict_agrees_with_peft(artifacts, bases, base_specs, kind, base_name):
    _, adapter_dir = artifacts[kind]
    outcome = peft_outcome(bases[base_name], adapter_dir)
    findings = check_adapter_base(AdapterSpec.from_info(inspect_adapter(adapter_dir), kind), base_specs[base_name])
    errors = {f.code for f in findings if f.severity == "error"}

    assert fits(findings) == (outcome.kind == "loads"), (outcome, findings)
    if outcome.kind == "load_error":
        if "size mismatch" in outcome.error:
            assert errors & SHAPE_CODES, (outcome.error, findings)
        else:
            assert "NoMatchingPeftModule" in outcome.error, outcome.error
            assert "NO_MODULE_IN_BASE" in errors, findings
    elif outcome.kind == "dropped":
        # silently: PEFT loaded and did not warn about the weights it ignored
        for module in outcome.dropped:
            assert covered(module, findings, DROP_CODES), (module, findings)
    elif outcome.kind == "missing":
        assert outcome.warned_missing, "PEFT's only signal is a missing-keys warning"
        for module in outcome.missing:
            assert covered(module, findings, {"MODULES_WITHOUT_WEIGHTS"}), (module, findings)


# The crossed test above proves agreement; these pin down *which* behaviour PEFT shows
# for each kind of wrong base, so a change in PEFT is noticed here first.
@pytest.mark.parametrize("kind, base_name, expected, code", [
    ("plain", "llama", "loads", None),
    ("plain", "llama-h96", "load_error", "SHAPE_MISMATCH"),           # other hidden size
    ("plain", "llama-mha", "load_error", "KV_HEADS_MISMATCH"),        # GQA adapter on an MHA base
    ("qwen2", "llama", "load_error", "KV_HEADS_MISMATCH"),            # MHA adapter on a GQA base
    ("plain", "llama-v160", "loads", None),                           # vocabulary does not touch q/v
    ("embedding", "llama-v160", "load_error", "VOCAB_MISMATCH"),      # ... but an embedding LoRA does
    ("modules_to_save", "llama-v160", "load_error", "VOCAB_MISMATCH"),  # ... and a saved lm_head
    ("plain", "llama-1layer", "dropped", "LAYERS_BEYOND_BASE"),       # silently unadapted
    ("plain", "llama-3layers", "missing", "MODULES_WITHOUT_WEIGHTS"),  # layer 2 wrapped, no weights
    ("all_linear", "llama-3layers", "loads", None),                   # exact paths: layer 2 left alone
    ("gpt2", "gpt2", "loads", None),                                  # Conv1D (in, out) layout
    ("gpt2", "gpt2-h96", "load_error", "SHAPE_MISMATCH"),
    ("gpt2", "llama", "load_error", "NO_MODULE_IN_BASE"),
    ("modules_to_save", "qwen2-tied", "loads", None),                 # tied lm_head still exists
])
def test_peft_behaviour_per_case(artifacts, bases, base_specs, kind, base_name, expected, code):
    _, adapter_dir = artifacts[kind]
    outcome = peft_outcome(bases[base_name], adapter_dir)
    assert outcome.kind == expected, outcome
    findings = check_adapter_base(AdapterSpec.from_info(inspect_adapter(adapter_dir), kind), base_specs[base_name])
    if code is None:
        assert fits(findings), findings
    else:
        assert code in {f.code for f in findings}, findings


def test_adapter_with_wrong_or_missing_base_name_is_matched_by_shapes(artifacts, bases, base_specs, tmp_path):
    """base_model_name_or_path is null, ../ or a Kaggle path: shapes find the base, and
    exactly the bases PEFT loads it on cleanly."""
    from hub.compat import fitting_bases
    from hub.demo.factory import make_adapter

    for i, wrong in enumerate([None, "../", "/kaggle/input/llama-3-8b/transformers/1"]):
        folder = make_adapter(bases["llama-mha"], tmp_path / f"a{i}", seed=i, r=4, lora_alpha=8,
                              target_modules=["q_proj", "k_proj", "v_proj"])
        cfg_path = folder / "adapter_config.json"
        cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "base_model_name_or_path": wrong}))
        spec = AdapterSpec.from_info(inspect_adapter(folder), f"a{i}")
        assert spec.base_model == wrong
        matched = {b.name for b, _ in fitting_bases(spec, list(base_specs.values()))}
        clean = {name for name, path in bases.items() if peft_outcome(path, folder).kind == "loads"}
        # qwen2-tied has the very same q/k/v shapes (MHA, hidden 64): PEFT loads it there too
        assert matched == clean
        assert "llama-mha" in matched and not matched & {"llama", "llama-h96", "gpt2"}
