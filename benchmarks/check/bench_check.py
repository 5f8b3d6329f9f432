"""`hub check` on 1,000 registered adapters against one base, with its peers.

Setup (not timed):
- a registry of N adapters as `hub add` stores them (benchmarks/list/synth_registry.py:
  Llama-family bases from Qwen2.5-0.5B to Llama-3-8B, 2-7 target modules, ranks 4-128,
  32-224 modules each);
- a header-only Meta-Llama-3-8B base folder: the real config.json values and the real
  tensor table in 4 safetensors shards + index, the data area a sparse hole (no disk);
  hub reads headers only, so it cannot tell;
- for peer 1, the same N adapters as files: adapter_config.json + a safetensors file
  with PEFT's key names and shapes (sparse data).

Timed, each repeated; median and min reported:
- hub, re-check: `hub check --base B --refresh` (Hub.check_base_all(refresh=True)): every
  registered adapter against the base from its rows (config, per-module shapes), the
  verdicts written back to adapter_base_fits in one transaction;
- hub, stored: `hub check --base B`, verdicts stored since each adapter was added reused;
- `hub list --fits B` (the stored answer) and one `hub check NAME --base B`;
- the CLI end to end in a fresh process, and its startup alone;
- peer 1 (files, no registry): read every adapter's config + safetensors header and the
  base's headers, then the same rules: what a tool without stored shapes must do;
- peer 2 (PEFT, today's way to find out): PeftModel.from_pretrained + a forward pass per
  adapter, on tiny real bases/adapters (an 8B base does not fit this machine), against
  hub's per-adapter check of the same tiny adapters.

Run:  python benchmarks/check/bench_check.py [--count 1000] [--repeat 5] [--peft 12]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "list"))

LLAMA3_8B = dict(  # meta-llama/Meta-Llama-3-8B config.json
    architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=4096, intermediate_size=14336,
    num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
    max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
    torch_dtype="bfloat16", bos_token_id=128000, eos_token_id=128001,
)
DTYPE_SIZE = {"F32": 4, "BF16": 2, "F16": 2}
LOAD0 = ""


def _write_sparse_safetensors(path: Path, tensors: list[tuple[str, tuple, str]]) -> None:
    header, offset = {}, 0
    for name, shape, dtype in tensors:
        n = DTYPE_SIZE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)       # a hole: no blocks written


def make_llama3_8b(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    c = LLAMA3_8B
    h, i, kv = c["hidden_size"], c["intermediate_size"], c["num_key_value_heads"] * 128
    layers = []
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}"
        layers.append([(f"{p}.self_attn.q_proj.weight", (h, h), "BF16"), (f"{p}.self_attn.k_proj.weight", (kv, h), "BF16"),
                       (f"{p}.self_attn.v_proj.weight", (kv, h), "BF16"), (f"{p}.self_attn.o_proj.weight", (h, h), "BF16"),
                       (f"{p}.mlp.gate_proj.weight", (i, h), "BF16"), (f"{p}.mlp.up_proj.weight", (i, h), "BF16"),
                       (f"{p}.mlp.down_proj.weight", (h, i), "BF16"), (f"{p}.input_layernorm.weight", (h,), "BF16"),
                       (f"{p}.post_attention_layernorm.weight", (h,), "BF16")])
    shards = [[("model.embed_tokens.weight", (c["vocab_size"], h), "BF16")] + sum(layers[0:8], []),
              sum(layers[8:16], []), sum(layers[16:24], []),
              sum(layers[24:32], []) + [("model.norm.weight", (h,), "BF16"),
                                        ("lm_head.weight", (c["vocab_size"], h), "BF16")]]
    weight_map = {}
    for k, tensors in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        _write_sparse_safetensors(folder / name, tensors)
        weight_map.update({t[0]: name for t in tensors})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(c, indent=2))
    return folder


def write_adapter_files(home: Path, out: Path) -> list[Path]:
    """The registry's rows as adapter folders (config + header-only safetensors)."""
    from sqlalchemy import select

    from hub import paths
    from hub.registry.db import Database
    from hub.registry.schema import adapters

    db = Database(paths.default_database_url(home))
    folders = []
    with db.read() as conn:
        for row in conn.execute(select(adapters.c.name, adapters.c.config_json, adapters.c.modules_json,
                                       adapters.c.dtype).order_by(adapters.c.name)):
            folder = out / row.name
            folder.mkdir(parents=True)
            (folder / "adapter_config.json").write_text(row.config_json)
            tensors = []
            for path, m in json.loads(row.modules_json).items():
                key = f"base_model.model.{path}"
                tensors += [(f"{key}.lora_A.weight", (m["r"], m["in_features"]), row.dtype),
                            (f"{key}.lora_B.weight", (m["out_features"], m["r"]), row.dtype)]
                if m.get("dora"):
                    tensors.append((f"{key}.lora_magnitude_vector", (m["out_features"],), row.dtype))
            _write_sparse_safetensors(folder / "adapter_model.safetensors", tensors)
            folders.append(folder)
    db.dispose()
    return folders


TIMES: dict[str, list[float]] = {}
CPU: dict[str, float] = {}


def timed(fn, repeat: int, label: str | None = None) -> tuple[float, object]:
    """Median wall time of ``repeat`` runs; under ``label`` all runs are kept (min column) and
    the median CPU time of this process (on a machine shared with other work, the closest
    figure to an idle core's wall time; subprocess runs have no CPU figure)."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if label:
        TIMES[label] = times
        CPU[label] = statistics.median(cpu)
    return statistics.median(times), result


def peer_files(folders: list[Path], base_dir: Path) -> int:
    """No registry: read every adapter's config and header and the base's headers, then check."""
    from hub.compat import AdapterSpec, BaseSpec, check_adapter_base, fits
    from hub.formats.adapter_config import read_config
    from hub.formats.base_model import read_base_model
    from hub.formats.safetensors_header import read_header
    from hub.inspect import build_info

    base = BaseSpec.from_info(read_base_model(base_dir))
    ok = 0
    for folder in folders:
        info = build_info(str(folder), read_config(folder / "adapter_config.json"),
                          read_header(folder / "adapter_model.safetensors"), [])
        ok += fits(check_adapter_base(AdapterSpec.from_info(info), base))
    return ok


def peer_peft(count: int, repeat: int, work: Path) -> dict:
    """PEFT load + forward per adapter vs hub's stored-row check, on tiny real models."""
    import warnings

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from hub.demo.factory import make_adapter, make_base
    from hub.service import Hub

    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    gqa = make_base("llama", work / "tiny-gqa")
    mha = make_base("llama", work / "tiny-mha", num_key_value_heads=4)
    folders = [make_adapter(gqa if k % 2 == 0 else mha, work / f"tiny-{k}", seed=k, r=8, lora_alpha=16,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]) for k in range(count)]

    def peft_all():
        verdicts = []
        for folder in folders:
            model = AutoModelForCausalLM.from_pretrained(gqa, dtype=torch.float32)
            try:
                PeftModel.from_pretrained(model, folder)(torch.tensor([[1, 2, 3]]))
                verdicts.append(True)
            except RuntimeError:
                verdicts.append(False)
        return verdicts

    hub = Hub(home=work / "tiny-home")
    for k, folder in enumerate(folders):
        hub.add(folder, name=f"tiny-{k}")
    hub.add_base(gqa, name="tiny-gqa")

    def hub_all():
        return [hub.check(f"tiny-{k}", "tiny-gqa").compatible for k in range(count)]

    t_peft, v_peft = timed(peft_all, max(1, repeat // 2), "peft")
    t_hub, v_hub = timed(hub_all, repeat, "peft_hub")
    hub.close()
    assert v_peft == v_hub, (v_peft, v_hub)
    return {"adapters": count, "peft_s_per_adapter": t_peft / count, "hub_s_per_adapter": t_hub / count,
            "agree": v_peft == v_hub}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--peft", type=int, default=12, help="tiny adapters for the PEFT peer (0: skip)")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hub-bench-check-"))
    home = work / "home"
    os.environ["HUB_HOME"] = str(home)
    from synth_registry import build_registry

    from hub.listing.filters import ListFilter
    from hub.service import Hub

    global LOAD0
    LOAD0 = f"{os.getloadavg()[0]:.1f}"
    try:
        build_registry(home, args.count)
        base_dir = make_llama3_8b(work / "Meta-Llama-3-8B")
        hub = Hub(home=home)
        t0 = time.perf_counter()
        rec = hub.add_base(base_dir, name="llama3-8b")
        t_add = time.perf_counter() - t0

        t_full, batch = timed(lambda: hub.check_base_all("llama3-8b", refresh=True), args.repeat, "full")
        fitting = sum(r.compatible for r in batch.reports)
        t_stored, stored = timed(lambda: hub.check_base_all("llama3-8b"), args.repeat, "stored")
        assert [r.findings for r in stored.reports] == [r.findings for r in batch.reports]
        base_id = hub.base_id("llama3-8b")
        t_list, listed = timed(lambda: hub.list(ListFilter(fits=base_id)), args.repeat, "list")
        assert len(listed) == fitting == rec.fits
        one = listed[0].name
        t_one, _ = timed(lambda: hub.check(one, "llama3-8b"), args.repeat, "one")
        hub.close()

        cli = [str(Path(sys.executable).with_name("hub")), "check", "--base", "llama3-8b", "--json"]
        env = {**os.environ, "HUB_HOME": str(home)}
        t_cli_full, _ = timed(lambda: subprocess.run([*cli, "--refresh"], capture_output=True, env=env), 3, "cli_full")
        t_cli, _ = timed(lambda: subprocess.run(cli, capture_output=True, env=env), 3, "cli")
        t_startup, _ = timed(lambda: subprocess.run([cli[0], "--version"], capture_output=True, env=env), 3, "startup")

        folders = write_adapter_files(home, work / "adapters")
        t_files, ok_files = timed(lambda: peer_files(folders, base_dir), args.repeat, "files")
        assert ok_files == fitting

        def row(label, key, t):
            lo = min(TIMES[key])
            cpu = f", cpu {CPU[key]:.3f}" if not key.startswith(("cli", "startup")) else ""
            print(f"{label:<58}{t:8.3f} s  (min {lo:.3f}{cpu})")

        print(f"load average before: {LOAD0}, after: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        print(f"adapters registered: {args.count}; fit Meta-Llama-3-8B: {fitting} (Llama-3-8B and Mistral-7B shapes)")
        print(f"{'hub base add (headers + ' + str(args.count) + ' verdicts checked and stored)':<58}{t_add:8.3f} s")
        row(f"hub check --base --refresh: {args.count} adapters re-checked", "full", t_full)
        row(f"hub check --base: {args.count} adapters, stored verdicts", "stored", t_stored)
        row("hub list --fits (stored verdicts)", "list", t_list)
        row("hub check NAME --base (one adapter)", "one", t_one)
        row("CLI, fresh process: hub check --base --refresh --json", "cli_full", t_cli_full)
        row("CLI, fresh process: hub check --base --json", "cli", t_cli)
        row("CLI, fresh process: hub --version (startup alone)", "startup", t_startup)
        row(f"peer 1, files without registry ({args.count} adapters)", "files", t_files)
        print(f"  -> hub (re-check from rows) is {t_files / t_full:.1f}x faster than re-reading files; "
              f"stored verdicts {t_files / t_stored:.0f}x")
        if args.peft:
            p = peer_peft(args.peft, args.repeat, work)
            print(f"peer 2, PEFT from_pretrained + forward, tiny models: {p['peft_s_per_adapter'] * 1e3:8.2f} ms/adapter; "
                  f"hub check (stored rows): {p['hub_s_per_adapter'] * 1e3:.2f} ms/adapter "
                  f"({p['peft_s_per_adapter'] / p['hub_s_per_adapter']:.0f}x), verdicts agree: {p['agree']}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
