"""Hostile inputs: how long hub takes to refuse each one, next to what the unguarded peer
does with the same input (capped, so that this script itself always ends).

    .venv/bin/python benchmarks/hostile/bench_hostile.py [--cap 20]

Rows: a backtracking target_modules regex (peer: Python's re, as PEFT evaluates it), a YAML
alias bomb (peer: yaml.safe_load + json.dumps, what walking a recipe does), a header of
1.55 M zero-size tensors (peer: json.loads of the header, the first step of any reader), and
a silent / trickling Hub endpoint (peer: huggingface_hub's model_info without hub's bounds).
Peers run in a child process killed at --cap seconds ("> cap" in the table).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

EVIL = r"(.|..)*(?<=!)"
PATH = "model.layers.0.post_attention_layernorm"           # 39 characters
BOMB = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def _header(n: int) -> bytes:
    doc = {f"t{i}": {"dtype": "BF16", "shape": [0], "data_offsets": [0, 0]}
           for i in range(n)}
    return json.dumps(doc, separators=(",", ":")).encode()


def peer_regex():
    import re
    re.fullmatch(EVIL, PATH)


def peer_yaml():
    import yaml
    json.dumps(yaml.safe_load(BOMB))


def peer_header(blob_path):
    json.loads(Path(blob_path).read_bytes())


def peer_hub(endpoint):
    from huggingface_hub import HfApi
    HfApi(endpoint=endpoint).model_info("org/x")


def timed_peer(target, args, cap: float) -> str:
    proc = mp.get_context("spawn").Process(target=target, args=args)
    start = time.monotonic()
    proc.start()
    proc.join(cap)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return f"> {cap:g} s (killed)"
    return f"{time.monotonic() - start:.2f} s"


def timed(fn) -> tuple[str, str]:
    start = time.monotonic()
    try:
        fn()
        outcome = "accepted"
    except Exception as exc:  # noqa: BLE001 - the refusal is the result
        outcome = " ".join(str(exc).split())[:70]
    return f"{time.monotonic() - start:.2f} s", outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap", type=float, default=20.0)
    args = parser.parse_args()
    import tempfile

    from hub import patterns, safe_yaml
    from hub.formats.safetensors_header import BASE, parse_header
    from hub.sync.pull import snapshot
    from hub.sync.remote import Remote
    from hub.sync.spec import parse_spec
    from tests.hubserver.hostile import HostileHub

    os.environ.update(HF_HUB_ETAG_TIMEOUT="1", HF_HUB_DOWNLOAD_TIMEOUT="1", HUB_REMOTE_DEADLINE="8")
    rows = []
    rows.append(("regex (.|..)*(?<=!) on a 39-char module path", *timed(lambda: patterns.fullmatch(EVIL, PATH)),
                 timed_peer(peer_regex, (), args.cap)))
    rows.append(("YAML alias bomb (1 KB, 9**9 strings)", *timed(lambda: safe_yaml.load(BOMB)),
                 timed_peer(peer_yaml, (), args.cap)))
    with tempfile.TemporaryDirectory() as tmp:
        blob = _header(1_550_000)
        (Path(tmp) / "h.json").write_bytes(blob)
        head = len(blob).to_bytes(8, "little") + blob
        rows.append((f"header: 1.55 M zero-size tensors ({len(blob) / 1e6:.0f} MB)",
                     *timed(lambda: parse_header(head, len(head), "h.safetensors", BASE)),
                     timed_peer(peer_header, (str(Path(tmp) / "h.json"),), args.cap)))
    server = HostileHub().start()
    try:
        for mode in ("silent", "trickle"):
            endpoint = server.endpoint(mode)
            rows.append((f"Hub endpoint: {mode}",
                         *timed(lambda: snapshot(Remote(endpoint, None), parse_spec("org/x"))),
                         timed_peer(peer_hub, (endpoint,), args.cap)))
    finally:
        server.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'input'.ljust(width)}  {'hub':>8}  {'peer':>18}  hub's answer")
    for what, took, outcome, peer in rows:
        print(f"{what.ljust(width)}  {took:>8}  {peer:>18}  {outcome}")


if __name__ == "__main__":
    main()
