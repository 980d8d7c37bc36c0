"""YAML for configuration files: safe tags only, with a bound on alias expansion.

``yaml.safe_load`` already refuses arbitrary Python objects, but an anchor bomb (ten anchors,
each a list of ten aliases of the previous one) loads in milliseconds as shared references and
blows up to billions of nodes the first time something walks it: dumping the run's
``config.yaml``, a deep copy, validation. :func:`load_yaml` measures the document's size with
every alias expanded, before constructing anything, and refuses documents past a bound no
hand-written config comes near.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Nodes in the fully expanded document; the largest shipped config has a few hundred.
MAX_EXPANDED_NODES = 100_000


class YamlLimitError(ValueError):
    """The text is not YAML golongrl accepts; the message says why, without the file name."""


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the tree ``root`` unfolds to (aliases counted at every use), stopping past ``limit``."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > limit:
                return total
            sizes[id(node)] = total
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml(text: str, *, max_nodes: int = MAX_EXPANDED_NODES) -> Any:
    """Parse one YAML document with the safe loader; raise :class:`YamlLimitError` for invalid
    YAML, nesting too deep to parse, or more than ``max_nodes`` nodes once aliases expand."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, max_nodes)
        if size > max_nodes:
            raise YamlLimitError(
                f"expands to more than {max_nodes} nodes through anchors and aliases "
                "(an alias bomb?); write the values out"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise YamlLimitError(f"invalid YAML: {err}") from None
    except RecursionError:
        raise YamlLimitError("nested too deeply to parse") from None
    finally:
        loader.dispose()
