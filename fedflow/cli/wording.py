"""Error messages in the words of the command line.

The engine's messages name its Python methods (`list() shows the flows here`,
`forget() or gc() drop the failed record`), which is what a Python user
calls. A command-line user calls verbs, so where the CLI prints an error,
`for_the_cli` rewrites each method reference into its verb, with the flow's
id filled in when the error carries one. This is the one place the two
vocabularies meet: messages are written once, for Python.

>>> for_the_cli("flow post-1 failed: ...; (forget() or gc() drop the failed record)", "post-1")
'flow post-1 failed: ...; (`fedflow forget post-1` or `fedflow gc` drop the failed record)'
>>> for_the_cli("no flow 'x' on engine 'a'; list() shows the flows here")
"no flow 'x' on engine 'a'; `fedflow list` shows the flows here"
"""

from __future__ import annotations

import re

__all__ = ["VERBS", "for_the_cli"]

#: Engine method reference -> the command that does the same (ID: the flow's id).
VERBS = {
    "list()": "fedflow list",
    "pending()": "fedflow pending",
    "forget()": "fedflow forget ID",
    "gc()": "fedflow gc",
    "status()": "fedflow status ID",
    "result()": "fedflow result ID",
    "wake(id)": "fedflow wake ID",
    "timers()": "fedflow timers",
    "schedules()": "fedflow schedule list",
}
_METHOD = re.compile(r"(?<![\w.`])(" + "|".join(re.escape(m) for m in VERBS) + r")")


def for_the_cli(message: str, flow_id: str | None = None) -> str:
    """`message` with every engine method it names replaced by its `fedflow` verb in backquotes."""
    def verb(found: re.Match[str]) -> str:
        command = VERBS[found.group(1)]
        return f"`{command.replace('ID', flow_id) if flow_id else command}`"

    return _METHOD.sub(verb, message)
