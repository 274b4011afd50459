"""The web console of `fedflow serve --http HOST:PORT`, with /metrics and /healthz on the same port.

- `app`: the HTTP server (standard library), `Console` (bind, start, close)
- `routes`: what each URL does; `pages`: the HTML; `timeline`: a journal in words
- `auth`: the token (login cookie or Bearer header) and CSRF
- `metrics`: the Prometheus metrics; `hooks`: how they watch the engine

>>> from fedflow.console import check_address
>>> check_address("127.0.0.1:8080", token=None, insecure=False)
('127.0.0.1', 8080)
"""

from .app import Console, check_address

__all__ = ["Console", "check_address"]
