"""Combine methods are declared once (hub.combine.methods / a plugin's Method) and every
front reads the declarations: `hub combine`'s options and help, hub.compat's method rules
(`hub check --method`), the registry. The declarations load without torch or any method's
maths."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from hub.combine.declare import Method, Param
from hub.combine.registry import all_methods, builtin_methods, get_method, method_names, shared_params
from hub.errors import UsageError

MATHS = ["hub.combine.engine", "hub.combine.core", "hub.combine.maths", "hub.combine.lowrank", "hub.combine.exact",
         "hub.combine.svd", "hub.combine.ties", "hub.combine.dare", "hub.combine.magnitude"]


def test_declarations_and_their_readers_load_without_torch_or_maths():
    code = ("import json, sys\n"
            "import hub.cli.combine, hub.cli.check\n"
            "from hub.combine.registry import all_methods\n"
            "from hub.compat import method_rules\n"
            "methods = all_methods(); rules = method_rules()\n"
            "print(json.dumps({'methods': [m.name for m in methods], 'rules': sorted(rules),\n"
            "                  'loaded': sorted(m for m in sys.modules if m == 'torch' or m.startswith('hub.combine'))}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["methods"] == ["cat", "linear", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune"]
    assert set(out["methods"]) < set(out["rules"]) and "peft:ties" in out["rules"]
    assert "torch" not in out["loaded"]
    assert not set(MATHS) & set(out["loaded"]), out["loaded"]


def test_every_method_resolves_its_maths_on_first_use():
    for m in all_methods():
        fn = m.function()
        assert callable(fn) and fn.__module__.startswith("hub.combine."), m.name


def test_cli_options_are_the_declared_parameters():
    from hub.cli.combine import combine

    options = {p.name: p for p in combine.params if isinstance(p, click.Option)}
    declared = shared_params(builtin_methods())
    assert declared, "the built-ins declare parameters"
    for name, (param, methods) in declared.items():
        opt = options[name]
        assert opt.opts == [param.option]
        assert all(m in opt.help for m in methods) and param.help in opt.help
        if param.choices:
            assert list(opt.type.choices) == list(param.choices)
        else:
            assert opt.type.name == {int: "integer", float: "float", str: "text"}[param.type]
    help_text = combine.help
    for m in builtin_methods():
        assert m.name in help_text and m.summary.split()[0] in help_text


def test_shared_parameter_names_share_one_declaration():
    one = Method("a", "a", True, (Param("k", int, "k"),), combine="x:y")
    other = Method("b", "b", True, (Param("k", float, "another k"),), combine="x:y")
    with pytest.raises(ValueError, match="differently"):
        shared_params([one, other])


def test_param_pairs_are_typed_by_the_method_declaration():
    from hub.cli.combine import _given_params

    assert _given_params("dare_linear", {"density": 0.5}, ("seed=3",)) == {"density": 0.5, "seed": 3}
    with pytest.raises(click.UsageError, match="seed"):
        _given_params("svd", {}, ("seed=3",))
    with pytest.raises(UsageError, match="must be int"):
        _given_params("dare_ties", {}, ("seed=three",))


def test_unknown_method_names_the_declared_ones():
    with pytest.raises(UsageError) as err:
        get_method("nope")
    assert all(name in err.value.fix for name in method_names())


def test_compat_rule_of_an_unknown_method_is_a_usage_error():
    from hub.compat.adapter_adapter import method_rule

    assert method_rule("svd").rank == "k" and method_rule("cat").rank == "sum"
    with pytest.raises(UsageError):
        method_rule("nope")


def test_plugin_table_names_exactly_the_builtin_declarations():
    from hub import plugins
    from hub.combine.methods import BUILTIN

    table = plugins.BUILTIN["hub.methods"]
    assert list(table) == [m.name for m in BUILTIN]
    assert [plugins.load("hub.methods", name) for name in table] == list(BUILTIN)
    assert [get_method(name) for name in table] == list(BUILTIN)
