"""Regular expressions from adapter configs and recipes run under a time budget with PEFT's
semantics: a backtracking pattern is refused with PATTERN_TOO_SLOW (add, pull), reported as
that finding (check), fails only its own folder (scan) and never hangs a command."""

from __future__ import annotations

import json
import re

import pytest

from hub import patterns
from tests.helpers import copy_adapter, registry_state, run_cli, run_cli_bounded

# Matches nothing, and only after trying every split of the path into 1- and 2-character
# pieces: Fibonacci(len(path)) paths, hours for Python's re on a 48-character module name.
EVIL = r"(.|..)*(?<=!)"






def _with_config(src, dst, **changes):
    folder = copy_adapter(src, dst)
    config = json.loads((folder / "adapter_config.json").read_text())
    config.update(changes)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def test_same_results_as_python_re_on_peft_patterns():
    paths = ["model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj", "lm_head",
             "transformer.h.3.attn.c_attn", "model.embed_tokens"]
    pats = [r".*\.(q_proj|v_proj)", r"model\.layers\.\d+\.self_attn\.(q|k)_proj", r".*(?<!lm_head)",
            r"(.*)\.(\d)\.(.*)", r".*\.(\w)_proj", r"(\w+)\.\1", r"(?i).*ATTN.*", r"^.*c_attn$", r"[a-z_.]+"]
    for p in pats:
        for s in paths:
            for method in ("fullmatch", "match", "search"):
                ours = getattr(patterns, method)(p, s)
                theirs = getattr(re, method)(p, s)
                assert (ours and ours.group()) == (theirs and theirs.group()), (p, s, method)


def test_budget_is_shared_and_bounded():
    with patterns.budget(0.3):
        with pytest.raises(patterns.PatternTimeout) as caught:
            patterns.fullmatch(EVIL, "model.layers.0.self_attn.q_proj")
        with pytest.raises(patterns.PatternTimeout):   # the budget is spent: the next one stops at once
            patterns.fullmatch(EVIL, "model.layers.1.self_attn.q_proj")
    assert "PATTERN_TOO_SLOW" in str(caught.value)


@pytest.mark.parametrize("field", ["target_modules", "rank_pattern", "alpha_pattern"])
def test_add_refuses_a_backtracking_pattern(artifacts, tmp_path, hub_home, field):
    value = EVIL if field == "target_modules" else {EVIL: 4}
    folder = _with_config(artifacts["plain"][1], tmp_path / "evil", **{field: value})
    run_cli("add", artifacts["rslora"][1], "--name", "existing")
    before = registry_state(hub_home)
    result = run_cli_bounded("add", folder, "--name", "evil")
    line = result.stderr.strip()
    assert result.exit_code == 1 and "PATTERN_TOO_SLOW" in line and "\n" not in line, result.stderr
    assert registry_state(hub_home) == before


def test_scan_goes_on_past_a_hostile_folder(artifacts, tmp_path, hub_home):
    root = tmp_path / "loras"
    copy_adapter(artifacts["plain"][1], root / "a-good")
    _with_config(artifacts["dora"][1], root / "b-evil", target_modules=EVIL)
    copy_adapter(artifacts["gpt2"][1], root / "c-good")
    result = run_cli_bounded("scan", root, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert sorted(report["added"]) == ["a-good", "c-good"], report
    assert len(report["failed"]) == 1 and "b-evil" in json.dumps(report["failed"])
    assert "PATTERN_TOO_SLOW" in json.dumps(report["failed"])


def test_check_reports_the_finding_instead_of_hanging(artifacts, tmp_path, hub_home):
    """exclude_modules is only evaluated when checking against a base."""
    folder = _with_config(artifacts["plain"][1], tmp_path / "excl", exclude_modules=EVIL)
    assert run_cli("add", folder, "--name", "excl").exit_code == 0
    before = registry_state(hub_home)
    result = run_cli_bounded("check", "excl", "--base", artifacts["plain"][0], "--json")
    assert result.exit_code == 1, result.stderr
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert codes == ["PATTERN_TOO_SLOW"], codes
    assert registry_state(hub_home) == before


def test_recipe_layer_weight_regex_is_bounded(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "a").exit_code == 0
    assert run_cli("add", artifacts["rslora"][1], "--name", "b").exit_code == 0
    before = registry_state(hub_home)
    result = run_cli_bounded("combine", "a:0.5", "b:0.5", "--method", "linear", "--layer-weights", f"/{EVIL}/=2",
                      "--name", "ab")
    line = result.stderr.strip()
    assert result.exit_code == 1 and "PATTERN_TOO_SLOW" in line and "\n" not in line, result.stderr
    assert registry_state(hub_home) == before
