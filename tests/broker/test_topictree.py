"""The subscription / retained-topic index agrees with plain MQTT matching."""

from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from broker.topictree import TopicTree

FILTERS = ["#", "a/#", "a/+", "a/b", "+/b", "+/+", "a/+/c", "a/b/#", "$SYS/#", "+/#", "$SYS/+", "a"]
TOPICS = ["a", "a/b", "a/c", "b/b", "a/b/c", "a/x/c", "$SYS/up", "$SYS/a/b", "x", "a//c"]


def test_filters_matching() -> None:
    tree = TopicTree()
    for f in FILTERS:
        tree.add(f)
    for topic in TOPICS:
        expected = sorted(f for f in FILTERS if topic_matches_sub(f, topic))
        assert sorted(tree.filters_matching(topic)) == expected, topic


def test_topics_matching() -> None:
    tree = TopicTree()
    for topic in TOPICS:
        tree.add(topic)
    for f in FILTERS:
        expected = sorted(t for t in TOPICS if topic_matches_sub(f, t))
        assert sorted(tree.topics_matching(f)) == expected, f


def test_add_discard_and_size() -> None:
    tree = TopicTree()
    tree.add("a/b")
    tree.add("a/b")
    tree.add("a")
    assert len(tree) == 2 and "a/b" in tree and "a" in tree
    tree.discard("a/b")
    tree.discard("a/b")
    tree.discard("never/added")
    assert len(tree) == 1 and "a/b" not in tree and "a" in tree
    assert tree.filters_matching("a/b") == []
    tree.discard("a")
    assert len(tree) == 0 and tree.topics_matching("#") == []


LEVEL = st.sampled_from(["a", "b", "", "$x"])
WILD_LEVEL = st.sampled_from(["a", "b", "", "+", "$x"])


@given(
    filters=st.lists(
        st.tuples(st.lists(WILD_LEVEL, min_size=1, max_size=4), st.booleans()), max_size=8
    ),
    topic=st.lists(LEVEL, min_size=1, max_size=4),
)
def test_random_filters_agree_with_paho(
    filters: list[tuple[list[str], bool]], topic: list[str]
) -> None:
    tree = TopicTree()
    made = set()
    for levels, multi in filters:
        f = "/".join(levels + (["#"] if multi else []))
        tree.add(f)
        made.add(f)
    name = "/".join(topic)
    assert sorted(tree.filters_matching(name)) == sorted(
        f for f in made if topic_matches_sub(f, name)
    )
    topics_tree = TopicTree()
    topics_tree.add(name)
    for f in made:
        assert topics_tree.topics_matching(f) == ([name] if topic_matches_sub(f, name) else [])
