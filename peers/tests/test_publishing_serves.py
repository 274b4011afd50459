"""The same two peers as two real `fedflow serve` processes on 127.0.0.1, as they run in
production, through a crash (SIGKILL) and a restart on the same store."""

from peers import fed, publishing


def test_publishing_between_two_serves_survives_a_crash(fedflow_serve):
    fed_serve = fedflow_serve("fed", load=[fed.__file__])
    pub = fedflow_serve("pub", load=[publishing.__file__], peers={"fed": fed_serve.address})

    first = pub.client.start("publish", "hello", flow_id="post-1")
    assert first == {"id": "post-1", "status": "done",
                     "result": {"published": "hello!", "by": "fed", "count": 1}}

    pub.kill()      # SIGKILL, as a crash would
    pub.restart()   # the same address and store
    # The same id again is answered from pub's store: fed is not called a second time.
    assert pub.client.start("publish", "hello", flow_id="post-1") == first
    assert fed_serve.client.call("published") == {"result": ["hello!"]}
