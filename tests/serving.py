"""Helpers for the `hub serve` tests: start the real command as a process on a free
loopback port, and a TCP proxy that cuts one download short (to see a client resume)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    log: Path

    def access_log(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def logged(self, wanted, timeout: float = 30.0) -> list[str]:
        """The access-log lines for which ``wanted(line)`` holds, waiting for at least one: the
        server writes a request's line after the response went out, so a client may be faster."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.access_log() if wanted(line)]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def rss_peak_kb(self) -> int:
        """The server process's peak resident memory (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_serve(home: Path, *args: str, log: Path, env: dict | None = None, wait: bool = True) -> Served:
    """``hub serve --port 0 ARGS`` for registry ``home``; returns once it listens."""
    full_env = {**os.environ, **(env or {}), "HUB_HOME": str(home),
                "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    full_env.pop("HUB_DATABASE_URL", None)   # the served registries are SQLite files in ``home``
    out = open(log, "w")
    process = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", "0", *args], stdout=out,
                               stderr=subprocess.STDOUT, env=full_env, cwd=REPO_ROOT)
    served = Served("", process, log)
    if not wait:
        return served
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"at (http://\S+) ", log.read_text(errors="replace"))
        if m:
            served.url = m.group(1)
            return served
        if process.poll() is not None:
            raise AssertionError(f"hub serve exited: {log.read_text()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"hub serve did not start: {log.read_text()}")


class CuttingProxy:
    """Forwards a loopback port to ``target``; the first response to a GET without a Range
    header whose request line holds ``needle`` is cut after ``after`` bytes (connection
    closed), as a dropped network link would."""

    def __init__(self, target_url: str, needle: bytes, after: int):
        host, port = target_url.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.needle, self.after = needle, after
        self.cut_done = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            state = {"cut": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client, upstream, state) -> None:
        try:
            while data := client.recv(65536):
                lowered = data.lower()
                if (not self.cut_done.is_set() and data.startswith(b"GET ") and self.needle in data
                        and b"\r\nrange:" not in lowered):
                    state["cut"] = True
                upstream.sendall(data)
        except OSError:
            pass

    def _down(self, upstream, client, state) -> None:
        sent = 0
        try:
            while data := upstream.recv(65536):
                if state["cut"] and not self.cut_done.is_set():
                    room = self.after - sent
                    client.sendall(data[:max(0, room)])
                    sent += len(data)
                    if sent >= self.after:
                        self.cut_done.set()
                        break
                    continue
                client.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()
