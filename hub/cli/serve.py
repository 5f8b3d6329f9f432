"""`hub serve`: the registry as a read-only Hugging Face Hub endpoint (uvicorn + Starlette)."""

from __future__ import annotations

import ipaddress
import socket
import sys

import click

from hub.cli._app import cli, pass_state, stderr

LOOPBACK = "127.0.0.1"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_tokens(path: str) -> frozenset[str]:
    """One token per line (blank lines and # comments skipped)."""
    from pathlib import Path

    from hub.errors import UsageError

    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError("token file is not a regular file", str(file), "write one token per line into a file")
    if file.stat().st_size > 1 << 20:
        raise UsageError("token file is over 1 MiB", str(file), "write one token per line")
    tokens = frozenset(line.strip() for line in file.read_text(errors="replace").splitlines()
                       if line.strip() and not line.lstrip().startswith("#"))
    if not tokens or any(len(t) < 8 or not t.isprintable() or " " in t for t in tokens):
        raise UsageError("token file holds no usable token (at least 8 printable characters, no spaces)",
                         str(file), "put one token per line, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe())'`")
    return tokens


@cli.command()
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--namespace", default="local", show_default=True,
              help="The repo namespace of plain names: name x is the repo NAMESPACE/x.")
@click.option("--main", "main_alias", metavar="ALIAS",
              help="Serve the version this alias names as `main` (what clients download without a revision); "
                   "names without the alias then have no main.")
@click.option("--token-file", type=click.Path(dir_okay=False), help="Require `Authorization: Bearer TOKEN` with a "
                                                                     "token from this file (one per line).")
@click.option("--quiet", is_flag=True, help="No access log.")
@pass_state
def serve(state, host, port, namespace, main_alias, token_file, quiet):
    """Serve the registry, read-only, over the Hugging Face Hub's HTTP API.

    Serving stacks and clients read it with nothing but HF_ENDPOINT: huggingface_hub
    (snapshot_download, hf_hub_download, model_info, list_models), PEFT's
    from_pretrained, vLLM's --lora-modules, and `hub pull` on another machine. A name
    x is the repo NAMESPACE/x (org/x stays org/x); revisions: main (the latest, or
    --main ALIAS), vN, aliases as branches, each version's 40-hex commit id.

    \b
    hub serve --main prod
    HF_ENDPOINT=http://127.0.0.1:8787 vllm serve BASE --enable-lora \\
        --lora-modules style=local/style
    HF_ENDPOINT=http://127.0.0.1:8787 hub pull local/style@prod
    """
    import logging

    import uvicorn

    from hub.errors import UsageError
    from hub.names import check_name
    from hub.refs import check_alias
    from hub.serving.app import ServeApp
    from hub.serving.repos import RegistryRepos

    if "/" in namespace:
        raise UsageError(f"namespace {namespace!r} holds a '/'", None, "give one word, e.g. --namespace team")
    check_name(namespace, "namespace")
    if main_alias:
        check_alias(main_alias)
    tokens = read_tokens(token_file) if token_file else frozenset()
    hub = state.hub
    repos = RegistryRepos(hub, namespace=namespace, main_alias=main_alias)
    clashes = repos.clashes()
    if clashes:
        plain, full = clashes[0]
        raise UsageError(f"the names {plain!r} and {full!r} would both be the repo {full!r}"
                         + (f" (and {len(clashes) - 1} more pairs)" if len(clashes) > 1 else ""), None,
                         f"rename one (`hub rename {plain} NEW`) or serve under another --namespace")
    if not _is_loopback(host) and not tokens:
        stderr(f"hub: warning: serving on {host} without --token-file: anyone who can reach this address "
               "can read every adapter in the registry")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", None,
                         "choose another --port (0 picks a free one)") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("hub.serve").setLevel(logging.WARNING if quiet else logging.INFO)
    stderr(f"hub: serving {hub.home} read-only at http://{shown}:{bound} (namespace {namespace}"
           f"{', main = ' + main_alias if main_alias else ''}{', token required' if tokens else ''}); Ctrl-C stops")
    config = uvicorn.Config(ServeApp(repos, tokens).app, log_level="warning", access_log=False,
                            timeout_keep_alive=30, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
