"""The factor-space methods (cat, linear, svd) on numpy arrays: the same maths
(hub.combine.lowrank over hub.combine.arrays) as on torch tensors, chosen for float
parents so that `hub combine` never imports torch. Held against the torch path and
against PEFT (its deltas' dense truncated SVD, and add_weighted_adapter's cat)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import test_combine_lowrank
import torch
from safetensors.numpy import load_file as load_np
from safetensors.torch import load_file
from test_combine_lowrank import truncated
from test_combine_oracle import _peft_weighted_delta, peft_deltas, rel_err, weighted_sum
from test_startup_imports import HEAVY, imported

from hub.combine import Parent, combine, get_method, load_factors
from hub.combine.factors import arrays_for
from hub.combine.writer import lora_keys
from hub.errors import UsageError
from hub.inspect import inspect_adapter
from tests.helpers import run_cli

trio = test_combine_lowrank.trio   # the same three PEFT adapters (a fixture)


def parents_of(pairs, arrays: str):
    return [Parent(load_factors(folder, name=f"p{i}", arrays=arrays), w) for i, (folder, w) in enumerate(pairs)]


def as_torch(tensors: dict) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for k, v in tensors.items()}


@pytest.mark.parametrize("method,params", [("svd", {"rank": 5}), ("svd", {"energy": 0.9}), ("svd", {}),
                                           ("cat", {}), ("linear", {})])
def test_numpy_path_equals_torch_path(trio, method, params):
    _, parents = trio
    np_result = combine(parents_of(parents, "numpy"), method, params)
    pt_result = combine(parents_of(parents, "torch"), method, params)
    assert all(isinstance(v, np.ndarray) for v in np_result.tensors.values())
    assert [(m.path, m.rank) for m in np_result.modules] == [(m.path, m.rank) for m in pt_result.modules]
    for a, b in zip(np_result.modules, pt_result.modules):
        assert a.energy == pytest.approx(b.energy, abs=1e-6)
    assert np_result.config == pt_result.config
    ours, theirs = as_torch(np_result.tensors), pt_result.tensors
    assert sorted(ours) == sorted(theirs)
    for m in pt_result.modules:
        key_a, key_b = lora_keys(m.path, "linear")
        got = ours[key_b].double() @ ours[key_a].double()
        want = theirs[key_b].double() @ theirs[key_a].double()
        assert rel_err(got, want) < 1e-5, m.path


def test_numpy_svd_equals_dense_truncated_svd_of_peft_deltas(trio, tmp_path):
    base, parents = trio
    k = 5
    out = combine(parents_of(parents, "numpy"), "svd", {"rank": k}).write(tmp_path / "out")
    exact = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    got = peft_deltas(base, out)
    for path, delta in exact.items():
        want, _ = truncated(delta, k)
        assert rel_err(got[path], want) < 1e-4, path


def test_numpy_cat_equals_peft_cat(trio, tmp_path):
    base, parents = trio
    out = combine(parents_of(parents, "numpy"), "cat", {}).write(tmp_path / "out")
    peft_cat = _peft_weighted_delta(base, [f for f, _ in parents], [w for _, w in parents], "cat")
    got = peft_deltas(base, out)
    assert sorted(got) == sorted(peft_cat)
    assert max(rel_err(got[p], peft_cat[p]) for p in peft_cat) < 1e-5


def test_choice_of_arrays(artifacts, trio):
    _, parents = trio
    infos = [inspect_adapter(f, hash_files=False) for f, _ in parents]
    assert arrays_for(get_method("svd"), infos) == "numpy"
    assert arrays_for(get_method("cat"), infos, "float16") == "numpy"
    assert arrays_for(get_method("svd"), infos, "bfloat16") == "torch"   # numpy has no bf16
    assert arrays_for(get_method("ties"), infos) == "torch"              # dense, torch maths
    dora = inspect_adapter(artifacts["dora"][1], hash_files=False)
    assert arrays_for(get_method("svd"), [*infos, dora]) == "torch"
    with pytest.raises(UsageError, match="takes torch"):
        combine(parents_of(parents, "numpy"), "ties", {"density": 0.5})


def test_cli_svd_imports_no_torch_and_matches_both_oracles(trio, hub_home, tmp_path):
    base, parents = trio
    for i, (folder, _) in enumerate(parents):
        assert run_cli("add", folder, "--name", f"p{i}").exit_code == 0
    env = {**os.environ, "HUB_HOME": str(hub_home)}
    weights = [f"p{i}:{w}" for i, (_, w) in enumerate(parents)]
    modules = imported("combine", *weights, "--method", "svd", "--rank", "5", "--name", "mix", env=env)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert run_cli("export", "mix", tmp_path / "mix").exit_code == 0
    written = load_file(tmp_path / "mix" / "adapter_model.safetensors")
    assert {t.dtype for t in written.values()} == {torch.float32}
    torch_path = combine(parents_of(parents, "torch"), "svd", {"rank": 5})
    assert sorted(written) == sorted(torch_path.tensors)
    got = peft_deltas(base, tmp_path / "mix")
    exact = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    for m in torch_path.modules:
        key_a, key_b = lora_keys(m.path, "linear")
        want = torch_path.tensors[key_b].double() @ torch_path.tensors[key_a].double()
        assert rel_err(written[key_b].double() @ written[key_a].double(), want) < 1e-5, m.path
        assert rel_err(got[m.path], truncated(exact[m.path], 5)[0]) < 1e-4, m.path
    # the file numpy wrote reads back the same through safetensors' numpy loader
    assert sorted(load_np(tmp_path / "mix" / "adapter_model.safetensors")) == sorted(written)


def test_numpy_factors_are_mapped_views_equal_to_torch_reader(trio, tmp_path):
    """The numpy path reads factors as read-only views on a memory map (no copy until the
    maths stacks them); the values are safetensors' own. A tensor numpy cannot hold is one
    clear error, not a wrong array."""
    import shutil

    from safetensors.torch import save_file

    from hub.errors import InvalidAdapter

    _, parents = trio
    folder = parents[0][0]
    mapped, read = load_factors(folder, arrays="numpy"), load_factors(folder, arrays="torch")
    assert sorted(mapped.modules) == sorted(read.modules)
    for path, m in mapped.modules.items():
        assert not m.A.flags.writeable and not m.B.flags.writeable
        assert torch.equal(torch.from_numpy(m.A.copy()), read.modules[path].A)
        assert torch.equal(torch.from_numpy(m.B.copy()), read.modules[path].B)
    bf16 = tmp_path / "bf16"
    shutil.copytree(folder, bf16)
    tensors = load_file(bf16 / "adapter_model.safetensors")
    key = sorted(tensors)[0]
    tensors[key] = tensors[key].to(torch.bfloat16)
    save_file(tensors, str(bf16 / "adapter_model.safetensors"))
    with pytest.raises(InvalidAdapter, match="BF16"):
        load_factors(bf16, arrays="numpy")
