"""A trie of topic levels: finds matching filters or topics without scanning them all.

Used two ways by the embedded broker: a tree of subscription filters queried with a
published topic, and a tree of retained topics queried with a new subscription's
filter. Both follow MQTT 3.1.1 matching, including "a/#" matching "a" and wildcards
at the first level never matching a topic that starts with ``$``.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Node:
    children: dict[str, "_Node"] = field(default_factory=dict)
    key: str | None = None


class TopicTree:
    """A set of ``/``-separated strings (filters or topics) stored level by level."""

    def __init__(self) -> None:
        self._root = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        node: _Node | None = self._root
        for level in key.split("/"):
            node = node.children.get(level) if node else None
        return node is not None and node.key is not None

    def add(self, key: str) -> None:
        node = self._root
        for level in key.split("/"):
            node = node.children.setdefault(level, _Node())
        if node.key is None:
            node.key = key
            self._size += 1

    def discard(self, key: str) -> None:
        path = [self._root]
        levels = key.split("/")
        for level in levels:
            child = path[-1].children.get(level)
            if child is None:
                return
            path.append(child)
        if path[-1].key is None:
            return
        path[-1].key = None
        self._size -= 1
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.key is not None or node.children:
                break
            del path[depth - 1].children[levels[depth - 1]]

    def clear(self) -> None:
        self._root = _Node()
        self._size = 0

    def filters_matching(self, topic: str) -> list[str]:
        """Stored filters that match the concrete ``topic``."""
        levels = topic.split("/")
        dollar = topic.startswith("$")
        found: list[str] = []
        stack = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            wild_ok = not (dollar and index == 0)
            multi = node.children.get("#")
            if multi is not None and multi.key is not None and wild_ok:
                found.append(multi.key)
            if index == len(levels):
                if node.key is not None:
                    found.append(node.key)
                continue
            literal = node.children.get(levels[index])
            if literal is not None:
                stack.append((literal, index + 1))
            single = node.children.get("+")
            if single is not None and wild_ok:
                stack.append((single, index + 1))
        return found

    def topics_matching(self, topic_filter: str) -> list[str]:
        """Stored concrete topics that ``topic_filter`` matches."""
        levels = topic_filter.split("/")
        found: list[str] = []
        stack = [(self._root, 0)]
        while stack:
            node, index = stack.pop()
            if index == len(levels):
                if node.key is not None:
                    found.append(node.key)
                continue
            level = levels[index]
            if level == "#":
                if node.key is not None and index > 0:
                    found.append(node.key)
                for name, child in node.children.items():
                    if not (index == 0 and name.startswith("$")):
                        found.extend(_keys_below(child))
            elif level == "+":
                for name, child in node.children.items():
                    if not (index == 0 and name.startswith("$")):
                        stack.append((child, index + 1))
            else:
                exact = node.children.get(level)
                if exact is not None:
                    stack.append((exact, index + 1))
        return found


def _keys_below(node: _Node) -> Iterator[str]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.key is not None:
            yield current.key
        stack.extend(current.children.values())
