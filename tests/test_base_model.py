"""hub.formats.base_model's module table on real tiny checkpoints, compared with the
modules transformers itself builds from the same config."""

from __future__ import annotations

import pytest
import torch

from hub.formats.base_model import read_base_model


def _torch_modules(folder):
    """{module path: (kind, in, out)} for every Linear/Conv1D/Embedding transformers builds."""
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            out[name] = ("linear", module.in_features, module.out_features)
        elif isinstance(module, Conv1D):
            out[name] = ("conv1d", module.weight.shape[0], module.weight.shape[1])
        elif isinstance(module, torch.nn.Embedding):
            out[name] = ("embedding", module.num_embeddings, module.embedding_dim)
    return out, model.config.tie_word_embeddings


@pytest.mark.parametrize("kind, overrides", [
    ("llama", {}), ("llama", {"num_key_value_heads": 4, "vocab_size": 160}), ("qwen2", {}), ("gpt2", {}),
])
def test_module_table_matches_transformers(artifacts, kind, overrides):
    folder = artifacts.base(kind, **overrides)
    info = read_base_model(folder)
    expected, tied = _torch_modules(folder)
    got = {p: (m.kind, m.in_features, m.out_features) for p, m in info.modules.items()}
    assert got == expected
    assert info.tie_word_embeddings == tied
    if tied:   # the head has no tensor of its own: it points at the token embedding, not positions
        assert "lm_head.weight" not in info.tensors
        assert info.modules["lm_head"].tied_to in ("model.embed_tokens.weight", "transformer.wte.weight")


def test_metadata_from_config_and_headers(artifacts):
    info = read_base_model(artifacts.base("llama", hidden_size=96))
    assert (info.architecture, info.model_type, info.hidden_size, info.vocab_size, info.num_layers) == \
        ("LlamaForCausalLM", "llama", 96, 128, 2)
    assert info.dtype == "F32" and info.quantization is None
    assert info.param_count == sum(torch.Size(t.shape).numel() for t in info.tensors.values())
    # equal shapes, equal signature; any shape change, another one
    assert read_base_model(artifacts.base("llama")).shape_signature != info.shape_signature
