"""Hub sync commands: pull, push, search-remote, status.

Pulls show one byte progress bar on stderr (when it is a terminal); pushes show
huggingface_hub's upload bars (HF_HUB_DISABLE_PROGRESS_BARS=1 hides them).
HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured.
"""

from __future__ import annotations

import sys

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, fmt_num, human_size, table
from hub.cli._progress import byte_progress


@cli.command()
@click.argument("spec", metavar="REPO_ID[@REVISION] | NAME")
@click.option("--subfolder", metavar="PATH", help="The adapter's folder inside the repo (for repos with several).")
@click.option("--name", help="Registry name (default: the repo's name, plus the subfolder).")
@click.option("--all", "all_adapters", is_flag=True, help="Pull every adapter in the repo.")
@click.option("--list", "list_only", is_flag=True, help="Only list the adapters in the repo; download nothing.")
@click.option("--update", is_flag=True, help="SPEC is a registered NAME: fetch the newer commit of the revision it "
                                             "was pulled from.")
@click.option("--new-version", is_flag=True, help="Add the pulled adapter as the next version of --name NAME.")
@click.option("--tag", "tags", multiple=True, help="Tag to attach (repeatable).")
@json_option
@pass_state
def pull(state, spec, subfolder, name, all_adapters, list_only, update, new_version, tags, as_json):
    """Download an adapter from the Hugging Face Hub and register it.

    Only the adapter's files are fetched (adapter_config.json,
    adapter_model.safetensors, README.md), checked against the sizes and hashes the
    Hub lists, and registered like `hub add`, recording repo, revision and commit.
    Pulling a commit already registered downloads nothing. Pickle-only adapters
    (adapter_model.bin) are refused.

    \b
    hub pull my-org/sql-lora                 default branch
    hub pull my-org/sql-lora@v1.0            a tag, branch or full commit id
    hub pull my-org/loras --list             the adapters in a multi-adapter repo
    hub pull my-org/loras --subfolder sql    one of them (or --all)
    hub pull --update sql-lora               newer commit of what sql-lora was pulled from
    hub pull team/style@prod --name style --new-version
                                             from another hub (`hub serve`, HF_ENDPOINT): the next
                                             version of style
    """
    hub = state.hub
    if update:
        if subfolder or name or all_adapters or list_only or new_version:
            raise click.UsageError("--update takes only a registered NAME")
        with byte_progress("pulling") as update:
            results = [hub.pull_update(spec, progress=update)]
    elif list_only:
        snap = hub.remote_adapters(spec)
        if as_json:
            emit_json({"repo_id": snap.repo_id, "revision": snap.revision, "commit": snap.commit,
                       "adapters": [a.to_dict() for a in snap.adapters]})
            return
        stderr(f"{snap.repo_id}@{snap.revision or 'main'} is at {snap.commit[:12]}")
        table(["SUBFOLDER", "SIZE", "FILES"],
              [[a.subfolder or "(root)", human_size(a.size),
                ", ".join(f.name for f in a.files) + ("  (pickle only: refused)" if not a.has_weights and a.pickles
                                                      else "")]
               for a in snap.adapters])
        if not snap.adapters:
            stderr("no adapters (no adapter_config.json) in this repo")
        return
    else:
        with byte_progress("pulling") as update:
            results = hub.pull(spec, subfolder=subfolder, name=name, all_adapters=all_adapters, tags=tags,
                               progress=update, new_version=new_version)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for r in results:
            if r.status == "failed":
                stderr(f"failed  {r.subfolder or '(root)'}: {r.message}")
            elif r.status in ("added", "updated"):
                rec = r.record
                click.echo(f"{r.message}: r={rec.r} alpha={fmt_num(rec.lora_alpha)} "
                           f"targets={','.join(rec.target_modules)} ({human_size(rec.size_bytes)})")
            else:
                stderr(f"hub: {r.message}")
    if any(r.status == "failed" for r in results):
        sys.exit(1)


@cli.command()
@click.argument("name")
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private (if it does not exist yet).")
@click.option("--revision", metavar="BRANCH", help="Branch to push to (created from main if missing).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of pushing to the branch.")
@click.option("--subfolder", metavar="PATH", help="Put the adapter in this folder of the repo.")
@click.option("--base-model", metavar="ORG/NAME",
              help="Hub id of the base model for the card (default: the adapter's base_model_name_or_path).")
@json_option
@pass_state
def push(state, name, repo_id, private, revision, create_pr, subfolder, base_model, as_json):
    """Upload a registered adapter to a Hub repo, with a generated model card.

    Creates the repo if needed and uploads the adapter files and a README.md whose
    metadata carries base_model, base_model_relation: adapter, library_name: peft
    and tags (plus lineage and recipe for combined adapters). Pushing content the
    repo already has creates no commit. The remote is recorded for `hub status`.
    """
    outcome = state.hub.push(name, repo_id, private=private, revision=revision, create_pr=create_pr,
                             base_model=base_model, subfolder=subfolder)
    for warning in outcome.warnings:
        stderr(f"hub: warning: {warning}")
    if as_json:
        emit_json(outcome.to_dict())
        return
    r = outcome.result
    if not r.changed:
        stderr(f"hub: {repo_id}@{r.revision} already has this content ({r.commit[:12]}); no commit made")
    elif r.pr_url:
        click.echo(f"opened {r.pr_url} ({r.revision} at {r.commit[:12]})")
    else:
        click.echo(f"pushed {name} to {r.url} ({r.revision} at {r.commit[:12]})"
                   + (" [new repo]" if r.created_repo else ""))


@cli.command("search-remote")
@click.option("--base", metavar="MODEL", help="Base model id: adapters whose card names it (base_model:adapter:MODEL).")
@click.option("--author", metavar="A", help="Only repos of this user or organisation.")
@click.option("--query", "-q", metavar="Q", help="Text to match in the repo id.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many results.")
@json_option
@pass_state
def search_remote(state, base, author, query, limit, as_json):
    """Search the Hub for adapters, marking those already in the registry."""
    hits = state.hub.search_remote(base=base, author=author, query=query, limit=limit)
    if as_json:
        emit_json([h.to_dict() for h in hits])
        return
    if not hits:
        stderr("no adapters found")
        return
    table(["REPO", "BASE", "DOWNLOADS", "LIKES", "REGISTERED"],
          [[h.model.repo_id, ", ".join(h.model.base_models) or "-", h.model.downloads or 0, h.model.likes or 0,
            ", ".join(h.registered) or ""] for h in hits], {1: 40})


@cli.command()
@click.argument("name", required=False)
@click.option("--no-check", is_flag=True, help="Show what is recorded without asking the Hub.")
@json_option
@pass_state
def status(state, name, no_check, as_json):
    """Show pulled and pushed adapters whose remote revision moved on.

    States: up-to-date, moved (the remote has a newer commit: `hub pull --update
    NAME`), gone (repo or revision deleted), unchecked (offline or --no-check).
    """
    states = (state.reader if no_check else state.hub).remote_status(name, check=not no_check)
    if as_json:
        emit_json([s.to_dict() for s in states])
        return
    if not states:
        stderr("no adapter has a recorded remote (use `hub pull` or `hub push`)")
        return
    table(["NAME", "DIR", "REMOTE", "HAVE", "NOW", "STATE"],
          [[s.name, s.direction, f"{s.repo_id}@{s.revision}" + (f"/{s.subfolder}" if s.subfolder else ""),
            (s.commit or "-")[:12], (s.remote_commit or "-")[:12], s.state] for s in states])
