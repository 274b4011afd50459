"""Import the peer modules given to `fedflow serve --load` and run their `register(engine)`.

A target is a dotted module name (``mypackage.peer``, imported as usual, with
the working directory on the import path) or a ``.py`` file (loaded under a
unique module name, so two files called ``peer.py`` never clash). Its
``register(engine)`` exposes functions (``engine.expose``) and defines flows
(``fedflow.defflow``). Every failure becomes one `LoadError` whose message
names the target and what to fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

from .. import registry
from .config import is_path

__all__ = ["LoadError", "Loaded", "import_target", "load_into"]


class LoadError(Exception):
    """Raised when a `--load` target cannot be imported or its `register(engine)` fails."""


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What one `--load` target added: the exposed functions and flow names it registered."""

    target: str
    module: str
    exposed: list[str]
    flows: list[str]


def _unique_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    safe = "".join(ch if ch.isalnum() else "_" for ch in stem)
    digest = hashlib.sha1(os.path.abspath(path).encode("utf-8")).hexdigest()[:10]
    return f"fedflow_loaded_{safe}_{digest}"


def _import_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise LoadError(f"--load {path}: no such file; give a .py file or a dotted module name")
    name = _unique_name(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"--load {path}: not a Python source file; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so dataclasses, pickling of names and re-imports find it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _import_dotted(target: str) -> ModuleType:
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    return importlib.import_module(target)


def import_target(target: str) -> ModuleType:
    """Import a dotted module or a `.py` file that has a `register(engine)` function;
    LoadError (one line) on any failure."""
    try:
        module = _import_file(target) if is_path(target) else _import_dotted(target)
    except LoadError:
        raise
    except ModuleNotFoundError as exc:
        raise LoadError(f"--load {target}: cannot import it ({exc}); check the module name, "
                        f"the working directory, or give a .py path") from exc
    except (Exception, SystemExit) as exc:  # the module's own code failed while importing
        raise LoadError(f"--load {target}: importing it raised {_describe(exc)}; fix the module") from exc
    if not callable(getattr(module, "register", None)):
        raise LoadError(f"--load {target}: the module has no register(engine) function; add one that "
                        f"exposes functions (engine.expose) and defines flows (defflow)")
    return module


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SyntaxError) and exc.lineno:
        text = f"{exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_into(engine: Any, target: str, module: ModuleType | None = None) -> Loaded:
    """Import `target` (unless `module` is it, imported already) and call its
    `register(engine)`; what it exposed and defined."""
    module = module if module is not None else import_target(target)
    exposed_before, flows_before = set(engine.exposed()), set(registry.names())
    try:
        module.register(engine)
    except (Exception, SystemExit) as exc:
        raise LoadError(f"--load {target}: register(engine) raised {_describe(exc)}; fix the module") from exc
    return Loaded(target=target, module=module.__name__,
                  exposed=sorted(set(engine.exposed()) - exposed_before),
                  flows=sorted(set(registry.names()) - flows_before))
