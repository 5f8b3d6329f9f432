"""Property-based tests (hypothesis) for the safetensors header reader and the config validator.

Oracles are the reference implementations: the safetensors library for headers,
torch for NaN/Inf, PEFT's own `LoraConfig.save_pretrained` for configs.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from hub.errors import InvalidConfig, InvalidSafetensors, Unsupported, UnsafeFormat
from hub.formats import adapter_config as cfgmod
from hub.formats.safetensors_header import nonfinite_counts, parse_header, read_header

HEADER_ERRORS = (InvalidSafetensors, UnsafeFormat)
CONFIG_ERRORS = (InvalidConfig, Unsupported)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TORCH_DTYPES = {
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
    "I8": torch.int8, "U8": torch.uint8, "I16": torch.int16, "I32": torch.int32, "I64": torch.int64,
    "BOOL": torch.bool, "F8_E5M2": torch.float8_e5m2, "F8_E4M3": torch.float8_e4m3fn,
}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64", "F8_E5M2", "F8_E4M3")


# -- strategies --------------------------------------------------------------------------------

names = st.text(alphabet="abcdefghij._0123456789", min_size=1, max_size=24)
shapes = st.lists(st.integers(0, 5), min_size=0, max_size=3)


@st.composite
def tensor_dicts(draw, dtypes=tuple(TORCH_DTYPES)):
    out = {}
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        dtype = TORCH_DTYPES[draw(st.sampled_from(dtypes))]
        shape = draw(shapes)
        out[name] = (torch.rand(shape) * 100 - 50).to(dtype)
    return out


@st.composite
def safetensors_files(draw):
    tensors = draw(tensor_dicts())
    metadata = draw(st.one_of(st.none(), st.dictionaries(names, st.text(max_size=8), max_size=3)))
    return tensors, st_save(tensors, metadata=metadata)


@st.composite
def mutations(draw, blob: bytes):
    """One structural mutation of a valid file."""
    (n,) = struct.unpack("<Q", blob[:8])
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "length", "header_text"]))
    if kind == "flip":
        i = draw(st.integers(0, len(blob) - 1))
        return blob[:i] + bytes([blob[i] ^ draw(st.integers(1, 255))]) + blob[i + 1:]
    if kind == "truncate":
        return blob[:draw(st.integers(0, len(blob) - 1))]
    if kind == "insert":
        i = draw(st.integers(0, len(blob)))
        return blob[:i] + draw(st.binary(min_size=1, max_size=16)) + blob[i:]
    if kind == "length":
        return struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + blob[8:]
    header = json.loads(blob[8:8 + n])
    key = draw(st.sampled_from(sorted(header)))
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
    if key != "__metadata__":
        header[key][field] = draw(st.one_of(st.integers(-3, 2**62), st.text(max_size=4), st.none(),
                                            st.lists(st.integers(-3, 2**40), max_size=3)))
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)), max_leaves=20)
config_keys = st.sampled_from(sorted(cfgmod.KNOWN_KEYS) + ["r", "lora_alpha", "target_modules", "x_unknown"])


@st.composite
def config_docs(draw):
    """Mostly-plausible configs with some fields replaced by arbitrary JSON."""
    doc = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}
    for key, value in draw(st.dictionaries(config_keys, json_values, max_size=4)).items():
        doc[key] = value
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=2)):
        doc.pop(key, None)
    return doc


module_names = st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj",
                                "c_attn", "dense"])


@st.composite
def lora_kwargs(draw):
    kw = {
        "r": draw(st.integers(1, 512)),
        "lora_alpha": draw(st.one_of(st.integers(1, 1024), st.floats(0.01, 1e4))),
        "lora_dropout": draw(st.floats(0, 1)),
        "use_rslora": draw(st.booleans()),
        "use_dora": draw(st.booleans()),
        "fan_in_fan_out": draw(st.booleans()),
        "bias": draw(st.sampled_from(["none", "all", "lora_only"])),
        "target_modules": draw(st.one_of(
            st.lists(module_names, min_size=1, max_size=4, unique=True),
            st.just("all-linear"),
            st.lists(module_names, min_size=1, max_size=3, unique=True).map(lambda m: r".*\.(" + "|".join(m) + ")"))),
        "task_type": draw(st.sampled_from([None, "CAUSAL_LM", "SEQ_CLS"])),
    }
    if draw(st.booleans()):
        kw["rank_pattern"] = draw(st.dictionaries(module_names, st.integers(1, 128), max_size=3))
        kw["alpha_pattern"] = draw(st.dictionaries(module_names, st.floats(0.5, 256), max_size=3))
    if draw(st.booleans()):
        kw["modules_to_save"] = draw(st.lists(st.sampled_from(["lm_head", "score", "embed_tokens"]),
                                             min_size=1, max_size=2, unique=True))
    if isinstance(kw["target_modules"], list) and draw(st.booleans()):  # PEFT forbids it with a regex
        kw["layers_to_transform"] = draw(st.lists(st.integers(0, 40), min_size=1, max_size=4, unique=True))
    return kw


# -- header reader -----------------------------------------------------------------------------

@FAST
@given(st.binary(max_size=256))
def test_any_bytes_give_a_header_or_a_hub_error(blob):
    try:
        parse_header(blob, len(blob), "fuzz.safetensors")
    except HEADER_ERRORS as exc:
        assert "\n" not in str(exc)


@FAST
@given(st.text(max_size=200), st.binary(max_size=64))
def test_any_header_text_gives_a_header_or_a_hub_error(text, data):
    raw = text.encode("utf-8", "surrogatepass")
    blob = struct.pack("<Q", len(raw)) + raw + data
    try:
        parse_header(blob, len(blob), "fuzz.safetensors")
    except HEADER_ERRORS:
        pass


@SLOW
@given(safetensors_files())
def test_files_written_by_safetensors_are_read_exactly(case):
    tensors, blob = case
    header = parse_header(blob, len(blob), "roundtrip.safetensors")
    assert set(header.tensors) == set(tensors)
    inv = {v: k for k, v in TORCH_DTYPES.items()}
    for name, t in tensors.items():
        entry = header.tensors[name]
        assert entry.shape == tuple(t.shape)
        assert entry.dtype == inv[t.dtype]
        assert entry.nbytes == t.numel() * t.element_size()


@SLOW
@given(st.data())
def test_hub_accepts_only_what_safetensors_accepts_identically(data):
    """The reader is at least as strict as the reference library: whatever mutated
    file hub accepts, safetensors loads too, with the same names, shapes and dtypes."""
    tensors, blob = data.draw(safetensors_files())
    mutated = data.draw(mutations(blob))
    try:
        header = parse_header(mutated, len(mutated), "mutated.safetensors")
    except HEADER_ERRORS:
        return
    loaded = st_load(mutated)
    assert set(loaded) == set(header.tensors)
    inv = {v: k for k, v in TORCH_DTYPES.items()}
    for name, t in loaded.items():
        assert header.tensors[name].shape == tuple(t.shape)
        assert header.tensors[name].dtype == inv[t.dtype]


@SLOW
@given(tensor_dicts(dtypes=FLOAT_DTYPES), st.data())
def test_nonfinite_counts_agree_with_torch(tensors, data):
    for name, t in tensors.items():
        if t.numel():
            flat = t.float().reshape(-1)
            for _ in range(data.draw(st.integers(0, 3))):
                i = data.draw(st.integers(0, t.numel() - 1))
                flat[i] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
            tensors[name] = flat.reshape(t.shape).to(t.dtype)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.safetensors"
        path.write_bytes(st_save(tensors))
        got = nonfinite_counts(path, read_header(path))
    want = {n: int((~torch.isfinite(t.float())).sum()) for n, t in tensors.items()}
    assert got == {n: c for n, c in want.items() if c}


# -- config validator --------------------------------------------------------------------------

@FAST
@given(json_values)
def test_any_json_value_is_a_config_or_a_hub_error(doc):
    try:
        cfgmod.validate_config(doc, "fuzz/adapter_config.json")
    except CONFIG_ERRORS as exc:
        assert "\n" not in str(exc)


@FAST
@given(config_docs())
def test_accepted_configs_give_sane_ranks_and_scalings(doc):
    try:
        cfgmod.validate_config(doc, "fuzz/adapter_config.json")
    except CONFIG_ERRORS:
        return
    for path in ("model.layers.0.self_attn.q_proj", "model.layers.3.mlp.down_proj", "transformer.h.1.attn.c_attn"):
        r = cfgmod.module_rank(doc, path)
        alpha = cfgmod.module_alpha(doc, path)
        assert isinstance(r, int) and 1 <= r <= 65536
        assert math.isfinite(alpha) and alpha > 0
        for rslora in (False, True):
            s = cfgmod.scaling(alpha, r, rslora)
            assert math.isfinite(s) and s > 0


@FAST
@given(config_docs())
def test_reading_a_config_file_never_fails_uncleanly(doc):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "adapter_config.json"
        path.write_text(json.dumps(doc))
        try:
            assert cfgmod.read_config(path) == json.loads(path.read_text())
        except CONFIG_ERRORS:
            pass


@SLOW
@given(lora_kwargs())
def test_every_config_peft_saves_is_accepted(kw):
    """No false alarms: whatever PEFT itself writes (valid values) passes the validator."""
    from peft import LoraConfig

    with tempfile.TemporaryDirectory() as d:
        LoraConfig(**kw).save_pretrained(d)
        doc = cfgmod.read_config(Path(d) / "adapter_config.json")
    assert doc["r"] == kw["r"]
    assert cfgmod.unknown_keys(doc) == []


@SLOW
@given(lora_kwargs(), st.sampled_from(["r", "lora_alpha"]),
       st.one_of(st.integers(-100, 0), st.just("8"), st.just(None), st.just(2**40), st.just([8])))
def test_configs_peft_saves_with_broken_ranks_are_refused(kw, field, value):
    """PEFT writes r=0 or alpha=-3 without complaint; hub refuses them with one line."""
    from peft import LoraConfig

    assume(not (field == "lora_alpha" and value == 2**40))  # a huge alpha is odd but valid
    kw[field] = value
    with tempfile.TemporaryDirectory() as d:
        LoraConfig(**kw).save_pretrained(d)
        with pytest.raises(InvalidConfig, match=field):
            cfgmod.read_config(Path(d) / "adapter_config.json")
