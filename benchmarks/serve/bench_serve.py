"""`hub serve` against a plain static file server serving the same files from disk.

Both servers get the same requests: C concurrent clients (threads, HTTP/1.1, one
connection each) each download the weights of one of V versions, N times; bytes are read
and counted, nothing is written. The peer is `python -m http.server` (ThreadingHTTPServer,
sendfile-less copy loop) over a folder holding one copy of each version, as a team would
share adapters on a file server. Reported:
MB/s over the whole run, ratio hub/peer, the server's peak RSS (VmHWM) before and after.

Run from the repository root:
    .venv/bin/python benchmarks/serve/bench_serve.py [--mb 32] [--versions 4] [--clients 1,32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.sync.bench_sync import make_adapter  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1))


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def fetch_all(port: int, paths: list[str], clients: int) -> tuple[int, float]:
    """Download every path (spread over ``clients`` threads, one keep-alive connection each)."""
    total = [0]
    lock = threading.Lock()
    share = [paths[i::clients] for i in range(clients)]

    def work(mine: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        got = 0
        for path in mine:
            conn.request("GET", path)
            response = conn.getresponse()
            if response.status != 200:
                raise SystemExit(f"{path}: HTTP {response.status}")
            while chunk := response.read(1 << 20):
                got += len(chunk)
        conn.close()
        with lock:
            total[0] += got

    threads = [threading.Thread(target=work, args=(m,)) for m in share]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total[0], time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=32, help="weights size per version")
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--clients", default="1,32", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=2, help="downloads per client")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {**os.environ, "HUB_HOME": str(work / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("HUB_DATABASE_URL", None)
    try:
        source = make_adapter(work / "adapter", args.mb)
        static = work / "static"
        for v in range(1, args.versions + 1):
            config = json.loads((source / "adapter_config.json").read_text())
            config["lora_alpha"] = 128 + v          # another version (the weights blob is shared in the store)
            (source / "adapter_config.json").write_text(json.dumps(config, indent=2))
            extra = ["--new-version"] if v > 1 else []
            subprocess.run([sys.executable, "-m", "hub", "add", str(source), "--name", "bench", *extra], env=env,
                           check=True, capture_output=True)
            shutil.copytree(source, static / f"v{v}")
        size = (source / "adapter_model.safetensors").stat().st_size

        hub_port, peer_port = free_port(), free_port()
        servers = {
            "hub serve": (subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(hub_port), "--quiet"],
                                           env=env, stderr=subprocess.DEVNULL), hub_port,
                          lambda v: f"/local/bench/resolve/v{v}/adapter_model.safetensors"),
            "python -m http.server": (subprocess.Popen([sys.executable, "-m", "http.server", str(peer_port),
                                                        "--bind", "127.0.0.1", "--directory", str(static)],
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                                      peer_port, lambda v: f"/v{v}/adapter_model.safetensors"),
        }
        rows = []
        try:
            for name, (process, port, path_of) in servers.items():
                wait_listening(port, process)
                fetch_all(port, [path_of(1)], 1)         # warm up
                start_kb = peak_kb(process.pid)
                for clients in [int(c) for c in args.clients.split(",")]:
                    paths = [path_of(i % args.versions + 1) for i in range(clients * args.rounds)]
                    got, seconds = fetch_all(port, paths, clients)
                    assert got == len(paths) * size, (got, len(paths) * size)
                    rows.append((name, clients, got / 2**20 / seconds, start_kb, peak_kb(process.pid), got))
        finally:
            for process, _, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)
        print(f"weights {size / 2**20:.1f} MiB x {args.versions} versions, {args.rounds} downloads per client, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        print(f"{'server':<24}{'clients':>8}{'MB/s':>10}{'RSS start MB':>14}{'RSS peak MB':>13}{'sent MB':>10}")
        for name, clients, rate, start_kb, end_kb, got in rows:
            print(f"{name:<24}{clients:>8}{rate:>10.0f}{start_kb / 1024:>14.0f}{end_kb / 1024:>13.0f}"
                  f"{got / 2**20:>10.0f}")
        for clients in sorted({r[1] for r in rows}):
            hub_rate = next(r[2] for r in rows if r[0] == "hub serve" and r[1] == clients)
            peer_rate = next(r[2] for r in rows if r[0] != "hub serve" and r[1] == clients)
            print(f"{clients} client(s): hub/peer throughput = {hub_rate / peer_rate:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
