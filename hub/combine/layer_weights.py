"""Per-layer weights: rules that scale a parent's weight on some modules.

Text form (``--layer-weights``), comma-separated rules ``[PARENT@]SELECTOR=FACTOR``:

- SELECTOR is a layer index (``3``), an inclusive range (``0-15``) or a regular
  expression between slashes searched in the module path (``/mlp\\./``);
- PARENT limits the rule to one parent (by the name used on the command line);
- FACTOR multiplies that parent's weight on the matching modules.

When several rules match a (parent, module), the last one wins, so a broad rule
can be refined by a later, narrower one: ``0-31=0.5,style@31=1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub import patterns
from hub.errors import UsageError
from hub.formats.adapter_weights import layer_index
from hub.names import check_weight
from hub.refs import parse_ref

# PARENT may itself name a version (style@2@0-15=0.5, grammar: hub.refs); the last '@' starts the selector
_RULE = re.compile(r"^(?:(?P<parent>[^=/]+?)@)?(?P<selector>/.*/|\d+(?:-\d+)?)=(?P<factor>[^=]+)$")


@dataclass(frozen=True)
class LayerWeightRule:
    factor: float
    parent: str | None = None
    layers: tuple[int, int] | None = None   # inclusive range of layer indices
    match: str | None = None                # regex searched in the module path

    def applies(self, parent: str, path: str) -> bool:
        if self.parent is not None and self.parent != parent:
            return False
        if self.layers is not None:
            index = layer_index(path)
            if index is None or not (self.layers[0] <= index <= self.layers[1]):
                return False
        if self.match is not None and not patterns.search(self.match, path):   # untrusted: time-bounded
            return False
        return True

    def to_dict(self) -> dict:
        out: dict = {"factor": self.factor}
        if self.parent is not None:
            out["parent"] = self.parent
        if self.layers is not None:
            out["layers"] = list(self.layers)
        if self.match is not None:
            out["match"] = self.match
        return out

    @classmethod
    def from_dict(cls, doc: dict) -> "LayerWeightRule":
        layers = doc.get("layers")
        if isinstance(layers, int):
            layers = (layers, layers)
        rule = cls(factor=float(doc["factor"]), parent=doc.get("parent"),
                   layers=tuple(layers) if layers is not None else None, match=doc.get("match"))
        rule.validate()
        return rule

    def validate(self) -> None:
        where = f"layer weight rule {self.to_dict()}"
        check_weight(self.factor, where)
        if self.layers is None and self.match is None:
            raise UsageError("a layer weight rule needs layers or a regex", where, "add a layer range or /regex/")
        if self.layers is not None and self.layers[0] > self.layers[1]:
            raise UsageError(f"layer range {self.layers[0]}-{self.layers[1]} is empty", where, "write LOW-HIGH")
        if self.match is not None:
            try:
                patterns.compile(self.match)
            except patterns.PatternError as exc:
                raise UsageError(f"regex {self.match!r} does not compile: {exc}", where, "fix the pattern") from None


def _split_rules(spec: str) -> list[str]:
    """Split on commas outside /regex/ parts."""
    parts, current, in_regex = [], [], False
    for ch in spec:
        if ch == "/":
            in_regex = not in_regex
        if ch == "," and not in_regex:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_layer_weights(spec: str) -> list[LayerWeightRule]:
    rules = []
    for text in _split_rules(spec):
        m = _RULE.match(text)
        if not m:
            raise UsageError(f"cannot read layer weight rule {text!r}", "--layer-weights",
                             "write [PARENT@]LAYER=FACTOR, [PARENT@]LOW-HIGH=FACTOR or [PARENT@]/REGEX/=FACTOR")
        try:
            factor = float(m["factor"])
        except ValueError:
            raise UsageError(f"factor {m['factor']!r} is not a number", f"--layer-weights {text!r}",
                             "write e.g. 0-15=0.5") from None
        selector = m["selector"]
        parent = str(parse_ref(m["parent"])) if m["parent"] else None
        if selector.startswith("/"):
            rule = LayerWeightRule(factor, parent, match=selector[1:-1])
        else:
            low, _, high = selector.partition("-")
            rule = LayerWeightRule(factor, parent, layers=(int(low), int(high or low)))
        rule.validate()
        rules.append(rule)
    return rules


def weight_factor(rules: list[LayerWeightRule], parent: str, path: str) -> float:
    factor = 1.0
    for rule in rules:
        if rule.applies(parent, path):
            factor = rule.factor
    return factor
