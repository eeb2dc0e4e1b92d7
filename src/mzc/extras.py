"""The pip command that adds one of mzc's extras to the install the user actually has.

A clone installed with `pip install -e '.[dev]'` is not on PyPI under its name: telling it `pip install 'mzc[learned]'`
would fetch another mzc (or nothing). pip records where a package came from (PEP 610 direct_url.json); a local
source gets its own folder back in the hint.
"""
from __future__ import annotations

import json
import urllib.parse
from importlib import metadata


def install_hint(extra: str) -> str:
    """`pip install 'mzc[extra]'`, or for a local (editable) install `pip install -e '/path/to/clone[extra]'`."""
    try:
        direct = metadata.distribution("mzc").read_text("direct_url.json")
        info = json.loads(direct) if direct else {}
    except (metadata.PackageNotFoundError, ValueError, OSError):
        info = {}
    url = info.get("url", "") if isinstance(info, dict) else ""
    if url.startswith("file://"):
        folder = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        dir_info = info.get("dir_info")
        editable = isinstance(dir_info, dict) and dir_info.get("editable") is True
        return f"pip install {'-e ' if editable else ''}'{folder}[{extra}]'"
    return f"pip install 'mzc[{extra}]'"
