#!/usr/bin/env python
"""Print the largest modules and functions of src/mzc (lines, docstrings and comments included).

    python tools/sizes.py [--top N] [--limit LINES]

With --limit, exit 1 when a function is longer than LINES (the house rule is ~60 for code that mixes concerns).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "mzc")


def sizes(src: str = SRC):
    modules, functions = [], []
    for folder, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            rel = os.path.relpath(path, os.path.dirname(src))
            text = open(path, encoding="utf-8").read()
            modules.append((text.count("\n"), rel))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.lineno} {node.name}"))
    return sorted(modules, reverse=True), sorted(functions, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    modules, functions = sizes()
    print(f"{len(modules)} modules, {sum(n for n, _ in modules)} lines")
    for n, name in modules[: args.top]:
        print(f"  {n:5d}  {name}")
    print(f"{len(functions)} functions")
    for n, name in functions[: args.top]:
        print(f"  {n:5d}  {name}")
    if args.limit:
        over = [(n, name) for n, name in functions if n > args.limit]
        for n, name in over:
            print(f"over {args.limit} lines: {name} ({n})")
        return 1 if over else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
