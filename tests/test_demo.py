"""The README's first command: `HUB_HOME=.demo hub demo` runs every step on a fresh machine,
builds its models beside HUB_HOME (the write guard refuses outputs inside it), and runs again."""

from __future__ import annotations

from tests.helpers import cli_json, run_cli


def test_demo_runs_with_its_defaults_and_again(hub_home):
    first = run_cli("demo")
    assert first.exit_code == 0, first.stderr
    models = hub_home.parent / f"{hub_home.name}-models"
    assert (models / "merged" / "tiny-llama-plain" / "config.json").is_file()
    assert not (hub_home / "demo").exists()
    names = {r["name"] for r in cli_json("list")}
    assert {"llama-plain", "plain-plus-rslora"} <= names
    assert [m["name"] for m in cli_json("models")] == ["tiny-llama-plain"]
    again = run_cli("demo")
    assert again.exit_code == 0, again.stderr
    assert {r["name"] for r in cli_json("list")} == names
