"""The click group, shared options and the lazily opened Hub.

Nothing heavy is imported here: `hub --help` must not pay for SQLAlchemy, and
reading commands must never import torch or transformers.
"""

from __future__ import annotations

import os
import sys

import click

from hub._version import DISTRIBUTION, __version__
from hub.error_lines import render_error


class AppState:
    def __init__(self, db_url: str | None, home: str | None):
        self.db_url = db_url
        self.home = home
        self._hub = None
        self._reader = None

    @property
    def reader(self):
        """What reading commands call: hub.reader.Reader (no SQLAlchemy where it can answer)."""
        if self._reader is None:
            from hub.reader import Reader

            self._reader = Reader(self.home, self.db_url, lambda: self.hub)
        return self._reader

    @property
    def hub(self):
        if self._hub is None:
            from hub.service import Hub

            self._hub = Hub(home=self.home, db_url=self.db_url)
        return self._hub

    def close(self):
        if self._hub is not None:
            self._hub.close()


class HubGroup(click.Group):
    """Maps every error to one stderr line and an exit code (see hub.error_lines.ERROR_TABLE)."""

    def invoke(self, ctx):
        from hub.terminal_text import InertWriter

        # every byte a command prints passes through inert(): untrusted text (configs, tensor
        # names, Hub metadata, server errors) can never steer the terminal
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = InertWriter(sys.stdout), InertWriter(sys.stderr)
        try:
            return self._invoke(ctx)
        finally:
            sys.stdout, sys.stderr = saved

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place errors become messages
            message, code = render_error(exc)
            click.echo(message, err=True)
            ctx.exit(code)
        except KeyboardInterrupt:
            click.echo("hub: interrupted; nothing was left half-written", err=True)
            ctx.exit(130)

    def list_commands(self, ctx):
        from hub.cli._commands import load_commands

        load_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        from hub.cli._commands import load_command

        load_command(name)   # only this command's module: a reading command pays for no other
        return super().get_command(ctx, name)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=HubGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="hub", message=f"%(prog)s %(version)s ({DISTRIBUTION})")
@click.option("--db", "db_url", envvar="HUB_DATABASE_URL", metavar="URL",
              help="Registry database URL (default: SQLite under HUB_HOME; e.g. postgresql://user@host/hub).")
@click.option("--home", envvar="HUB_HOME", metavar="DIR", type=click.Path(file_okay=False),
              help="Where the registry and adapter store live (env HUB_HOME; default: the platform data dir).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log what hub reads, writes and decides to stderr (debug; HUB_LOG=info|warning|... sets a level).")
@click.pass_context
def cli(ctx, db_url, home, verbose):
    """hub: a registry for PEFT LoRA adapters.

    Index adapters by base model, rank, alpha and target modules; check them
    against bases before anything breaks; merge and combine them; sync with the
    Hugging Face Hub. Every reading command takes --json.
    """
    if verbose or os.environ.get("HUB_LOG"):
        from hub.logs import configure

        undo = configure(verbose, os.environ)
        if undo is not None:
            ctx.call_on_close(undo)   # registered first, so it runs after the Hub is closed
    state = AppState(db_url, home)
    ctx.obj = state
    ctx.call_on_close(state.close)


pass_state = click.pass_obj


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")(f)


def stderr(message: str) -> None:
    click.echo(message, err=True)


def main() -> None:
    try:
        cli(prog_name="hub")
    except BrokenPipeError:  # `hub list | head`
        sys.stderr.close()
        sys.exit(0)
    finally:
        # the interpreter's last collections walk every object the libraries made although the
        # process is ending and nothing of it needs collecting: 0.5-1 s after torch, 0.13 s after
        # SQLAlchemy and numpy (measured here); atexit handlers still run
        import gc

        gc.freeze()
