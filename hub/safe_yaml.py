"""YAML from files hub does not control (recipes, model cards), with bounded expansion.

``yaml.safe_load`` constructs no objects, but anchors and aliases still let a
1 KB document stand for a billion strings (each alias is a reference, so the load
is fast; whatever walks the result afterwards, a schema check or ``json.dumps``,
expands it: 2.7 GB and 50 s for one recipe). A document may also alias itself, which
no walker survives. ``load`` composes the node graph first and refuses a document
whose expanded size passes ``max_nodes`` or that refers to itself.
"""

from __future__ import annotations

import yaml

MAX_NODES = 100_000


class YAMLTooLarge(ValueError):
    """The document expands past the bound, or refers to itself."""


def _expanded_size(node, limit: int) -> int:
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(n) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise YAMLTooLarge("the YAML document refers to itself through an alias")
        on_path.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            for child in n.value:
                total += size(child)
                if total > limit:
                    raise YAMLTooLarge(f"the YAML document expands to more than {limit:,} values (aliases)")
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
                if total > limit:
                    raise YAMLTooLarge(f"the YAML document expands to more than {limit:,} values (aliases)")
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(node)


def load(text: str, max_nodes: int = MAX_NODES):
    """``yaml.safe_load(text)`` for documents that expand to at most ``max_nodes`` values.
    Raises YAMLTooLarge or yaml.YAMLError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _expanded_size(node, max_nodes)
        return yaml.safe_load(text)
    except RecursionError:
        raise YAMLTooLarge("the YAML document is nested too deeply") from None
