"""The registry of codec ids: the one source of codec facts for the planner, `auto`, bench, baselines and the CLI.

A built-in codec is a module of this package (or of codecs/neural/) with a class decorated `@register`: the registry
imports those modules the first time it is asked, so adding a codec is adding its file. Third-party codecs are
found through the `mzc.codecs` entry-point group (as numcodecs and zarr find theirs). A plug-in is a class following
codecs/base.py's protocol: see docs/plugins.md.
"""
from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
from importlib.metadata import entry_points

from .. import sandbox
from ..errors import MzcError
from .base import ROLES, BoundWrapper, Codec, Exact, MaxErrorCoder, NoiseCoder

ENTRY_POINT_GROUP = "mzc.codecs"
AUTO = "auto"  # not a codec: the planner's choice among the AutoCandidate codecs (or the Exact one without -q)
CODEC_FOLDERS = ("", "neural")  # where built-in codec modules live (relative to this package)
ROLE_ORDER = (Exact, MaxErrorCoder, NoiseCoder, BoundWrapper)  # listed first, in this order

REGISTRY: dict[str, type[Codec]] = {}
_registered: dict[str, int] = {}  # id -> registration count, to order within a module
_ordered: dict[str, type[Codec]] = {}  # codecs() once sorted (rebuilt when a codec registers)
_loaded = {"builtin": False, "plugins": False}
_lock = threading.RLock()  # Zarr and dask run codecs in threads: the first lookups must not see a half-filled registry
log = logging.getLogger(__name__)


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator: make `cls.id` name this codec in headers and on the command line."""
    if not isinstance(getattr(cls, "id", None), str) or not cls.id or ":" in cls.id or cls.id == AUTO:
        raise ValueError(f"codec class {cls.__name__} needs a plain string id (not {AUTO!r}, no ':')")
    REGISTRY[cls.id] = cls
    _registered.setdefault(cls.id, len(_registered))
    sandbox.shutdown()  # sandbox processes forked before now do not know this codec: the next decode forks anew
    return cls


@functools.lru_cache(maxsize=1)
def builtin_modules() -> tuple[str, ...]:
    """The modules of this package that register a codec (a line `@register`), without importing the others."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    for folder in CODEC_FOLDERS:
        path = os.path.join(here, folder)
        for name in sorted(os.listdir(path)):
            if name.endswith(".py") and not name.startswith("_") and name != "registry.py":
                with open(os.path.join(path, name), encoding="utf-8") as fh:
                    if "\n@register\n" in fh.read():
                        found.append(".".join(filter(None, (__package__, folder, name[:-3]))))
    return tuple(found)


def _load_builtin() -> None:
    if not _loaded["builtin"]:
        _loaded["builtin"] = True
        for module in builtin_modules():
            importlib.import_module(module)


def load_plugins() -> None:
    """Register the codecs of installed plug-ins (entry-point group `mzc.codecs`, value `module:Class`).

    A plug-in that fails to load is skipped with a warning in the log, so one broken package cannot stop mzc from
    reading every other file; a file that needs it then says which codec id is missing."""
    if _loaded["plugins"]:
        return
    _loaded["plugins"] = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in REGISTRY:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Codec)) or cls.id != ep.name:
                raise TypeError(f"{ep.value} is not an mzc Codec class with id {ep.name!r}")
            register(cls)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break mzc
            log.warning("mzc codec plug-in %s could not be loaded: %s", ep.name, exc)


def codecs() -> dict[str, type[Codec]]:
    """Every registered codec class by id, in a fixed order whatever was imported first: the role codecs, then the
    built-ins by module and definition order, then plug-ins."""
    with _lock:
        _load_builtin()
        load_plugins()
        if _ordered and len(_ordered) == len(REGISTRY):
            return _ordered
        modules = builtin_modules()

        def rank(cid: str) -> tuple[int, int, int]:
            cls = REGISTRY[cid]
            role = next((k for k, r in enumerate(ROLE_ORDER) if issubclass(cls, r)), len(ROLE_ORDER))
            module = modules.index(cls.__module__) if cls.__module__ in modules else len(modules)
            return role, module, _registered[cid]

        _ordered.clear()
        _ordered.update({cid: REGISTRY[cid] for cid in sorted(REGISTRY, key=rank)})
        return _ordered


def lookup(name: str) -> tuple[type[Codec], str]:
    """The class that `--codec ID[:VARIANT]` names and the variant; an unknown id is an error listing the known."""
    cid, _, variant = name.partition(":")
    cls = codecs().get(cid)
    if cls is None:
        raise MzcError(f"unknown codec {name!r}: choose from {', '.join([AUTO, *names()])}")
    return cls, variant


def providing(capability: type) -> list[type[Codec]]:
    """Codec classes with a capability (a mixin of codecs/base.py), in registration order."""
    return [cls for cls in codecs().values() if issubclass(cls, capability)]


def role(capability: type) -> type[Codec]:
    """The codec filling a role (Exact, MaxErrorCoder, NoiseCoder, BoundWrapper)."""
    found = providing(capability)
    if not found:
        raise MzcError(f"no codec provides {capability.__name__}")
    return found[0]


def is_role(cls: type[Codec]) -> bool:
    return issubclass(cls, ROLES)


def names() -> list[str]:
    """Every `--codec` spelling, for help texts and error messages."""
    return [cls.variants() for cls in codecs().values()]


def from_config(config: dict) -> Codec:
    """Build the codec a header names; an unknown id is an error naming it."""
    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise MzcError("corrupt header: codec entry has no id")
    cid = config["id"]
    cls = codecs().get(cid)
    if cls is None:
        raise MzcError(f"unknown codec {cid!r}: this file needs a newer mzc or a plug-in providing it")
    try:
        return cls.from_config(config)
    except MzcError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as exc:
        raise MzcError(f"corrupt header: bad {cid} codec configuration ({exc})") from None
