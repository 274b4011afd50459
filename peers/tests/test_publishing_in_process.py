"""The publishing peer (peers/publishing.py) and the fed peer it calls (peers/fed.py),
tested as in-process peers: engines in the test's process that know each other by name."""

from fedflow import remote_node
from peers import fed, publishing


def test_a_long_text_is_published_by_the_fed_peer(fedflow_federation):
    peers = fedflow_federation("pub", "fed")
    fed.register(peers["fed"])
    publishing.register(peers["pub"])

    assert peers["pub"].start("publish", "hello") == {"published": "hello!", "by": "fed", "count": 1}


def test_a_short_text_is_rejected_without_calling_the_fed_peer(fedflow_federation):
    peers = fedflow_federation("pub", "fed")
    fed.register(peers["fed"])
    publishing.register(peers["pub"])

    assert peers["pub"].start("publish", "x") == "rejected"
    assert peers["pub"].start(remote_node("fed", "published")) == []


def test_without_a_fed_peer_the_publishing_peer_publishes_by_itself(fedflow_engine):
    publishing.register(fedflow_engine)

    assert fedflow_engine.start("publish", "hello") == {"published": "hello!", "by": fedflow_engine.name}
