"""hub pull / push against the raw huggingface_hub client, side by side, on the fake Hub.

Every step runs as a fresh process (as a user would run it), so both sides pay the
same start-up. Measured:

  unreachable  time to a clear failure when the endpoint is down (closed port,
               unresolvable name): `hub pull` / `hub push` vs huggingface_hub's
               hf_hub_download / upload_folder, which retry with backoff for ~20 s
  pull         `hub pull` (download + verify + register into the store, NaN scan
               included) vs snapshot_download of the same files
  push         `hub push` (card + upload + record) vs upload_folder

Run from the repository root:
    .venv/bin/python benchmarks/sync/bench_sync.py [--mb 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.hubserver.fixture import start_server  # noqa: E402


def make_adapter(folder: Path, megabytes: int) -> Path:
    """A PEFT-layout LoRA (q/v, r=64, hidden 2048) of about ``megabytes`` MB, written directly."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hidden, r = 2048, 64
    per_module = 2 * hidden * r * 4
    layers = max(1, megabytes * 2**20 // (2 * per_module))
    tensors = {}
    for i in range(layers):
        for m in ("q_proj", "v_proj"):
            key = f"base_model.model.model.layers.{i}.self_attn.{m}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(r, hidden) * 0.01
            tensors[f"{key}.lora_B.weight"] = torch.randn(hidden, r) * 0.01
    folder.mkdir(parents=True)
    save_file(tensors, folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 128,
        "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "bench-org/bench-base",
        "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
    }, indent=2))
    return folder


def timed(cmd: list[str], env: dict, expect_ok: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    elapsed = time.perf_counter() - start
    if expect_ok and proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=32, help="adapter size in MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="hub-sync-bench-"))
    server = start_server(work / "fakehub")
    try:
        adapter = make_adapter(work / "adapter", args.mb)
        size = (adapter / "adapter_model.safetensors").stat().st_size
        base_env = server.env(hf_home=work / "hf")
        base_env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        rows = []

        # -- unreachable endpoint ---------------------------------------------------------
        peers = {
            "pull": ("hf_hub_download", "from huggingface_hub import hf_hub_download as d; "
                                        "d('alice/x', 'adapter_config.json')"),
            "push": ("upload_folder", "import sys; from huggingface_hub import HfApi; "
                                      "HfApi().upload_folder(repo_id='alice/x', folder_path=sys.argv[1])"),
        }
        for label, endpoint in (("closed port", "http://127.0.0.1:9"), ("unresolvable", "http://hub.invalid")):
            env = {**base_env, "HF_ENDPOINT": endpoint, "HUB_HOME": str(work / "home-unreach")}
            timed([py, "-m", "hub", "add", str(adapter), "--name", "bench"], env, expect_ok=False)
            for verb, hub_cmd in (("pull", ["pull", "alice/x"]), ("push", ["push", "bench", "alice/x"])):
                t_hub, proc = timed([py, "-m", "hub", *hub_cmd], env, expect_ok=False)
                assert proc.returncode != 0 and "cannot reach" in proc.stderr, proc.stderr
                peer, code = peers[verb]
                t_hf, proc = timed([py, "-c", code, str(adapter)], env, expect_ok=False)
                assert proc.returncode != 0
                rows.append((f"{verb}, {label}", t_hub, t_hf, f"hub {verb}", peer))

        # -- push -------------------------------------------------------------------------
        hub_push, hf_push = [], []
        for i in range(args.repeat):
            env = {**base_env, "HUB_HOME": str(work / f"home-push-{i}")}
            timed([py, "-m", "hub", "add", str(adapter), "--name", "bench"], env)
            t, _ = timed([py, "-m", "hub", "push", "bench", f"alice/bench-hub-{i}"], env)
            hub_push.append(t)
            t, _ = timed([py, "-c", "import sys; from huggingface_hub import HfApi; a=HfApi(); "
                                    "a.create_repo(sys.argv[1]); a.upload_folder(repo_id=sys.argv[1], folder_path=sys.argv[2])",
                          f"alice/bench-hf-{i}", str(adapter)], env)
            hf_push.append(t)
        rows.append(("push", statistics.median(hub_push), statistics.median(hf_push), "hub push", "upload_folder"))

        # -- pull -------------------------------------------------------------------------
        hub_pull, hf_pull = [], []
        for i in range(args.repeat):
            env = {**base_env, "HUB_HOME": str(work / f"home-pull-{i}"), "HF_HOME": str(work / f"hf-pull-{i}")}
            timed([py, "-m", "hub", "list"], env)  # create the registry outside the timing
            t, _ = timed([py, "-m", "hub", "pull", "alice/bench-hf-0"], env)
            hub_pull.append(t)
            t, _ = timed([py, "-c", "import sys; from huggingface_hub import snapshot_download as s; "
                                    "s(sys.argv[1], local_dir=sys.argv[2])",
                          "alice/bench-hf-0", str(work / f"snap-{i}")], env)
            hf_pull.append(t)
        rows.append(("pull", statistics.median(hub_pull), statistics.median(hf_pull), "hub pull", "snapshot_download"))

        print(f"adapter: {size / 2**20:.1f} MiB safetensors; median of {args.repeat} runs; fresh process each")
        print(f"{'case':28} {'hub (s)':>9} {'peer (s)':>9} {'hub/peer':>9}  peer")
        for case, t_hub, t_peer, _, peer in rows:
            print(f"{case:28} {t_hub:9.2f} {t_peer:9.2f} {t_hub / t_peer:9.2f}  {peer}")
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    main()
