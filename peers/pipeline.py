"""The render -> human-review -> publish pipeline, driven entirely by its host.

Each stage is a `request(kind, payload)`: the flow suspends with a pending
request and the host answers it. `Desk` is such a host: it renders, asks
its (simulated) human reviewer, and publishes. Until the reviewer has
decided, it answers `NOT_READY` and the flow keeps waiting, durably. A
rejected draft ends the flow with a `Fail` value, not an exception.

Run the story in one process::

    python peers/pipeline.py

Or serve it and be the host yourself with the CLI::

    fedflow serve --name desk --listen 127.0.0.1:50051 --load peers/pipeline.py
    fedflow start   --at 127.0.0.1:50051 pipeline '{"title": "Hi", "body": "first"}' --id post-1
    fedflow pending --at 127.0.0.1:50051        # post-1 waits on its "render" request
    fedflow resume  --at 127.0.0.1:50051 post-1 '"<h1>Hi</h1>"'
"""

from __future__ import annotations

from typing import Any

import fedflow
from fedflow import NOT_READY, Engine, defflow, node, request, sequence


def render(post: dict[str, Any]) -> str:
    """Ask the host to render the post into a draft."""
    return request("render", post)


def review(draft: str) -> dict[str, Any]:
    """Ask a human to review the draft; the answer is "approved" or a reason to reject."""
    return {"draft": draft, "verdict": request("review", draft)}


def publish(reviewed: dict[str, Any]) -> Any:
    """Publish an approved draft; a rejected one becomes a Fail value."""
    if reviewed["verdict"] != "approved":
        return fedflow.fail(f"rejected in review: {reviewed['verdict']}")
    return request("publish", reviewed["draft"])


#: render -> human review -> publish, each stage answered by the host.
pipeline = sequence(node(render), node(review), node(publish))


def register(engine: Engine) -> None:
    """Define the `pipeline` flow."""
    defflow("pipeline", pipeline)


class Desk:
    """A host for `pipeline`: renders, asks the reviewer, publishes."""

    def __init__(self) -> None:
        self.verdicts: dict[str, str] = {}  # draft -> "approved" or a reason; absent: not reviewed yet
        self.published: list[str] = []

    def __call__(self, kind: str, payload: Any) -> Any:
        """Answer one request, or NOT_READY while the reviewer has not decided."""
        if kind == "render":
            return f"<h1>{payload['title']}</h1><p>{payload['body']}</p>"
        if kind == "review":
            return self.verdicts.get(payload, NOT_READY)
        if kind == "publish":
            self.published.append(payload)
            return {"url": f"/posts/{len(self.published)}", "html": payload}
        raise ValueError(f"the desk cannot answer a {kind!r} request")


def main() -> None:
    """Tell the pipeline's story on an in-memory engine."""
    desk = Desk()
    with Engine(name="desk") as engine:
        register(engine)
        for post_id, title in (("post-1", "Hello"), ("post-2", "Spam")):
            waiting = engine.start("pipeline", {"title": title, "body": "first post"}, id=post_id)
            print(f"started {post_id}: it asks the host for {engine.requests()[-1][1]!r} (tag {waiting.tag})")
        ticks = engine.run_host(desk)
        print(f"host ran {ticks} tick(s): both rendered, now waiting for review: "
              f"{sorted(fid for fid, kind, _ in engine.requests() if kind == 'review')}")
        drafts = {fid: draft for fid, _kind, draft in engine.requests()}
        desk.verdicts[drafts["post-1"]] = "approved"
        desk.verdicts[drafts["post-2"]] = "off topic"
        print("the reviewer approves post-1 and rejects post-2")
        engine.run_host(desk)
        print(f"post-1 is {engine.status('post-1')}: {engine.result('post-1')}")
        print(f"post-2 is {engine.status('post-2')}: {engine.result('post-2')}")


if __name__ == "__main__":
    main()
