"""Three hosts on one machine: a network namespace each (ff-a, ff-b, ff-c) plus one for the
runner (ff-ctl), joined by veth pairs to a bridge in ff-hub. Addresses live only inside
the namespaces (10.77.0.0/24). `cut(host)` / `heal(host)` take a host's link down and up.
`teardown()` deletes every namespace this module made (their veths go with them)."""

from __future__ import annotations

import subprocess

PREFIX = "ff-"
HUB = f"{PREFIX}hub"
ADDRESSES = {"a": "10.77.0.1", "b": "10.77.0.2", "c": "10.77.0.3", "ctl": "10.77.0.10"}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def setup() -> None:
    """Make the namespaces, the bridge and the links (after removing leftovers of a crashed run)."""
    teardown()
    _ip("netns", "add", HUB)
    _ip("-n", HUB, "link", "add", "br0", "type", "bridge")
    _ip("-n", HUB, "link", "set", "br0", "up")
    for host, address in ADDRESSES.items():
        ns = f"{PREFIX}{host}"
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", HUB, "link", "add", f"h-{host}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", HUB, "link", "set", f"h-{host}", "master", "br0")
        _ip("-n", HUB, "link", "set", f"h-{host}", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")


def cut(host: str) -> None:
    """Take `host`'s link down: nothing reaches it, nothing leaves it."""
    _ip("-n", HUB, "link", "set", f"h-{host}", "down")


def heal(host: str) -> None:
    """Bring `host`'s link back up."""
    _ip("-n", HUB, "link", "set", f"h-{host}", "up")


def teardown() -> None:
    """Delete every namespace this module makes (those that exist)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    for name in [f"{PREFIX}{h}" for h in ADDRESSES] + [HUB]:
        if name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
