"""Jobs that run in a child process, so that cancelling (or quitting) ends them even when
they are blocked in a socket read: the child is terminated, not asked.

The parent (hub.tui.tasks) runs ``python -m hub.tui.child_jobs JOB_JSON``; the child opens
its own Hub on the same HUB_HOME/database, runs one job and writes JSON lines to stdout:
progress, then the plain result or the CLI's one-line error. Every write that a job does goes to a
temporary name first and is renamed into place, so a killed child leaves at most
leftovers under HUB_HOME/tmp that `hub doctor` removes. No Textual here.
"""

from __future__ import annotations

import json
import sys
import time


def _pull(hub, progress, spec: str, subfolder=None, name=None) -> dict:
    outcomes = hub.pull(spec, subfolder=subfolder, name=name, progress=progress)
    first = outcomes[0]
    return {"name": first.name, "message": first.message}


def _push(hub, progress, name: str, repo_id: str, base_model: str | None = None) -> dict:
    outcome = hub.push(name, repo_id, base_model=base_model)
    return {"name": name, "message": getattr(outcome, "message", f"pushed {name} to {repo_id}")}


def _scan(hub, progress, folder: str) -> dict:
    result = hub.scan(folder, progress=progress)
    return {"name": result.added[0] if result.added else None, "added": list(result.added),
            "message": f"scanned {folder}: added {len(result.added)}, skipped {len(result.skipped)}, "
                       f"failed {len(result.failed)}"}


JOBS = {"pull": _pull, "push": _push, "scan": _scan}


def child_main(home: str, db_url: str | None, job: str, kwargs: dict, emit) -> None:
    """Run one job; ``emit(message)`` sends ("progress", done, total, item), ("done", result)
    or ("error", line)."""
    last = [0.0]

    def progress(done, total, item="", *_rest):
        now = time.monotonic()
        if now - last[0] >= 0.05 or (total and done >= total):
            last[0] = now
            emit(("progress", int(done or 0), int(total or 0), str(item)))

    try:
        from hub.service import Hub

        with Hub(home=home, db_url=db_url) as hub:
            result = JOBS[job](hub, progress, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back as the CLI's one line
        from hub.error_lines import render_error

        emit(("error", render_error(exc)[0]))
        return
    emit(("done", result))


def _main() -> None:
    spec = json.loads(sys.argv[1])
    out = sys.stdout

    def emit(message) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    child_main(spec["home"], spec.get("db_url"), spec["job"], spec["kwargs"], emit)


if __name__ == "__main__":
    _main()
