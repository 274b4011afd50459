"""Hung peer functions do not starve the control verbs: they run on separate pools."""

from __future__ import annotations

import threading

import fedflow
from fedflow import server
from fedflow.client import ControlClient


def test_control_verbs_answer_while_every_peer_worker_is_stuck() -> None:
    release, all_in = threading.Event(), threading.Event()
    inside: list[int] = []
    lock = threading.Lock()

    def hang(_x: object) -> str:
        with lock:
            inside.append(1)
            if len(inside) == server.WORKERS:
                all_in.set()
        release.wait(30)
        return "released"

    engine = fedflow.Engine(name="pools")
    engine.expose("hang", hang)
    callers: list[threading.Thread] = []
    try:
        with server.run_server(engine, "127.0.0.1:0") as port:
            address = f"127.0.0.1:{port}"

            def call_and_hang() -> None:
                with ControlClient(address, deadline=30) as client:
                    try:
                        client.call("hang", None)
                    except fedflow.FedflowError:
                        pass

            callers = [threading.Thread(target=call_and_hang) for _ in range(server.WORKERS)]
            for caller in callers:
                caller.start()
            assert all_in.wait(20), "every peer worker should be inside the hung function"
            with ControlClient(address, deadline=5) as client:
                assert client.status("nobody") == {"id": "nobody", "status": "unknown"}
                assert client.list() == {"flows": []}
            release.set()
    finally:
        release.set()
        for caller in callers:
            caller.join(30)
        engine.close()
