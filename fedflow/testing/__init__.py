"""Testing flows and peer modules with several local peers.

Installing fedflow makes its pytest plugin (`fedflow.testing.plugin`) active:
the fixtures `fedflow_engine`, `fedflow_federation`, `fedflow_serve` and
`fake_clock`. The helpers behind them work outside pytest too:
`local_federation(*names)`, `Serves(workdir).start(name, ...)` and `FakeClock`.
"""

from ..clock import FakeClock
from .federation import local_federation
from .serve import Serve, ServeError, Serves

__all__ = ["FakeClock", "Serve", "ServeError", "Serves", "local_federation"]
