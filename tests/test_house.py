"""The house rules, checked like any other behaviour: lint clean, imports one way without a circle, no long
functions, and `import mzc` light."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


def test_ruff_passes():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(ROOT / ".venv" / "bin"))
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extras)")
    result = subprocess.run([ruff, "check", "src", "tests", "tools", "benchmarks", "testdata"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_run_down_the_layers_without_a_circle():
    result = run("tools/import_graph.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 circles" in result.stdout


def test_no_function_over_sixty_lines():
    result = run("tools/sizes.py", "--limit", "60")
    assert result.returncode == 0, result.stdout


def test_import_mzc_loads_no_heavy_module():
    heavy = ["numpy", "scipy", "skimage", "matplotlib", "torch", "imagecodecs", "tifffile", "rich", "click"]
    code = f"import sys, mzc; print([m for m in {heavy!r} if m in sys.modules])"
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_codec_id_outside_its_module_and_the_registry():
    """Adding a codec is one module (plus an entry point for plug-ins): nothing else may spell its id."""
    import ast

    from mzc.codecs import registry
    ids = {cid: cls.__module__ for cid, cls in registry.codecs().items()}
    # strings that spell an id but are other vocabularies (format keys, option names), each said why
    allowed = {("mzc.api", "noise"), ("mzc.encoding.report", "noise"),  # the header/report key of noise models
               ("mzc.format.report", "noise"),
               ("mzc.bounds.bound", "noise"),  # the bound kind (spec 6.4)
               ("mzc.codecs.nearlossless", "lossless"),  # its back-end label in chunk parameters (spec 6)
               ("mzc.codecs.bounded", "noise"), ("mzc.integrations.zarr_codec", "noise"),  # the option name
               ("mzc.cli.common", "lossless"), ("mzc.cli.analysis", "lossless"),  # the one-line report's
               ("mzc.cli.batchlog", "lossless"),  # fidelity word and the log's mode word (max error 0), any codec
               ("mzc.cli.resume", "noise"), ("mzc.cli.resume", "lossless"),  # encode's option names
               ("mzc.codecs.neural.field_fit", "learned")}  # the pip extra's name (extras.py)
    src = ROOT / "src"
    found = []
    for path in (src / "mzc").rglob("*.py"):
        module = ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        if module == "mzc.codecs.registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                cid = node.value.partition(":")[0]
                if cid in ids and ids[cid] != module and (module, node.value) not in allowed:
                    found.append(f"{module}:{node.lineno} {node.value!r}")
    assert not found, found
