#!/usr/bin/env python
"""Print which mzc module imports which, and fail on an import circle or an import that runs up the layers.

    python tools/import_graph.py [SRC_DIR] [--edges] [--check]

Every import counts, also those inside functions: a circle that only closes at run time is still a circle a
maintainer has to keep in mind. Layers (lowest first) are listed in LAYERS; a module may import its own layer or
lower ones. CI runs it with --check.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys

# lowest first; a module belongs to the first entry its dotted name starts with
LAYERS = [
    ("core", ("mzc.errors", "mzc.extras", "mzc._version", "mzc.pool", "mzc.names", "mzc.sandbox", "mzc.progress", "mzc.lifeline")),
    ("format", ("mzc.format",)),
    ("core2", ("mzc.tiling", "mzc.stats", "mzc.metrics", "mzc.resample", "mzc.foreground", "mzc.targets")),
    ("bounds", ("mzc.bounds",)),
    ("codecs", ("mzc.codecs",)),
    ("io", ("mzc.io",)),
    ("encoding", ("mzc.encoding",)),
    ("api", ("mzc.api", "mzc.parallel", "mzc.integrations")),
    ("analysis", ("mzc.analysis",)),
    ("cli", ("mzc.cli", "mzc.__main__")),
    ("package", ("mzc",)),  # mzc/__init__.py: the lazy public API, above everything it names
]


def module_name(path: str, src: str) -> str:
    rel = os.path.relpath(path, src)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def imports_of(path: str, name: str, modules: set[str]) -> set[str]:
    """mzc modules imported anywhere in the file (relative imports resolved; `from pkg import mod` -> pkg.mod)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(src: str) -> dict[str, set[str]]:
    paths = {}
    for folder, _, files in os.walk(os.path.join(src, "mzc")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                paths[module_name(path, src)] = path
    modules = set(paths)
    return {name: imports_of(path, name, modules) for name, path in sorted(paths.items())}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def layer(name: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (rank, len(p))
    return best[0] if best else len(LAYERS)


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, bs in edges.items() for b in sorted(bs) if layer(b) > layer(a)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    parser.add_argument("--edges", action="store_true", help="print every module and what it imports")
    parser.add_argument("--check", action="store_true", help="also fail on imports that run up the layers")
    args = parser.parse_args()
    edges = graph(args.src)
    if args.edges:
        for name, deps in edges.items():
            print(f"{name} -> {', '.join(sorted(deps)) or '-'}")
    circles = cycles(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {len(circles)} circles")
    for comp in circles:
        print("circle:", " <-> ".join(comp))
    status = 1 if circles else 0
    if args.check:
        bad = upward(edges)
        for a, b in bad:
            print(f"upward import: {a} ({LAYERS[layer(a)][0]}) -> {b} ({LAYERS[layer(b)][0]})")
        status |= 1 if bad else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
