"""Wheel build hook: the pure core compiled with mypyc (the same source, about 1.5x faster).

`pip install .` (a standard wheel) compiles the modules in `COMPILED_MODULES`
with mypyc and ships each extension beside its `.py`; Python imports the
extension first. Editable installs (`pip install -e .`, what `scripts/dev`
makes) stay pure Python, so an edit takes effect without a rebuild and no
build output ever lands in `src/`.

Set `LIVEMETRICS_PURE_PYTHON=1` to build a pure wheel (a machine without a C
compiler). A failed compile stops the build with mypyc's output; it never
falls back silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: The modules replay spends its time in: the engine, the aggregates, decoding,
#: the calendar, the config (the engine asks it for a policy at every SLA clock)
#: and the replay loop. All are pure but for config's reading of its file.
COMPILED_MODULES = (
    "livemetrics/engine/*.py",
    "livemetrics/aggregate/distribution.py",
    "livemetrics/aggregate/store.py",
    "livemetrics/calendar.py",
    "livemetrics/config.py",
    "livemetrics/events.py",  # not event_types.py: msgspec structs are not native classes
    "livemetrics/metrics.py",
    "livemetrics/replay.py",
)

PURE_PYTHON_VARIABLE = "LIVEMETRICS_PURE_PYTHON"


def compile_core(source: Path, target: Path) -> list[Path]:
    """Compile `COMPILED_MODULES` of the package at `source` into a copy of it at `target`.

    Returns the extension files written, relative to `target` (one per module,
    plus mypyc's shared library at the top). `target/livemetrics` is then an
    importable package: the copied `.py` files with their extensions beside them.
    """
    # only sources: a stray extension or bytecode in the checkout must not ship
    ignore = shutil.ignore_patterns("*.so", "*.pyc", "__pycache__")
    shutil.copytree(source, target / "livemetrics", ignore=ignore, dirs_exist_ok=True)
    modules = sorted(str(p.relative_to(target)) for g in COMPILED_MODULES for p in target.glob(g))
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", "--python-version", "3.11", *modules],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"mypyc could not compile the core (set {PURE_PYTHON_VARIABLE}=1 for a pure "
            f"wheel):\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    shutil.rmtree(target / "build", ignore_errors=True)
    return sorted(p.relative_to(target) for p in target.rglob("*.so"))


class CompiledCoreHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "standard" or os.environ.get(PURE_PYTHON_VARIABLE) == "1":
            return
        self._workdir = tempfile.TemporaryDirectory(prefix="livemetrics-mypyc-")
        target = Path(self._workdir.name)
        for extension in compile_core(Path(self.root) / "src" / "livemetrics", target):
            build_data["force_include"][str(target / extension)] = str(extension)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        workdir = getattr(self, "_workdir", None)
        if workdir is not None:
            workdir.cleanup()
