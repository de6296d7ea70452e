"""Wheel build hook: the pure core compiled with mypyc (the same source, about 3x faster).

`pip install .` (a standard wheel) compiles the modules in `COMPILED_MODULES`
with mypyc and ships each extension beside its `.py`; Python imports the
extension first. Editable installs (`pip install -e .`, what `scripts/dev`
makes) stay pure Python, so an edit takes effect without a rebuild and no
build output ever lands in `src/`.

Set `LIVEMETRICS_PURE_PYTHON=1` to build a pure wheel (a machine without a C
compiler). A failed compile stops the build with mypyc's output; it never
falls back silently. Set `LIVEMETRICS_PGO=1` for a profile-guided build
(`compile_core`): twice the build time, for fewer instructions and fewer
instruction-cache misses per event; `scripts/dev compiled` sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

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
PROFILE_GUIDED_VARIABLE = "LIVEMETRICS_PGO"

#: Added to every compile. The core is one shared object whose functions call
#: each other; as exported symbols of a `-fPIC` object they could be interposed,
#: so GCC would neither inline them nor call them directly. mypyc's module shims
#: reach the core through a capsule, never by symbol, so nothing interposes.
#: `-fno-plt`: the core calls Python's C API ten thousand places over; each call
#: then reads its address from the GOT instead of jumping through a PLT stub
#: (4.6 % fewer instruction-cache misses in replay, README "Benchmarks"). The
#: addresses are bound when the extension loads, not at the first call.
CFLAGS: Final = ("-fno-semantic-interposition", "-fno-plt")
#: First build of a profile-guided one: counts every branch as it runs.
PROFILE_GENERATE: Final = ("-fprofile-generate", "-fprofile-update=single")
#: Second build: lays out and inlines by those counts. A function the training
#: never ran keeps its plain optimisation (no profile is not an error).
PROFILE_USE: Final = ("-fprofile-use", "-fprofile-correction", "-Wno-missing-profile")

#: What a profile-guided build runs between its two compiles: a replay of a
#: generated stream of realistic traffic (not the benchmark's seed), in a child
#: whose PYTHONPATH is the instrumented copy.
TRAINING: Final = """
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
replay_lines(generate_stream(7, conversations=4000), parse_config(STREAM_CONFIG))
"""


def compile_core(source: Path, target: Path, profile_guided: bool = False) -> list[Path]:
    """Compile `COMPILED_MODULES` of the package at `source` into a copy of it at `target`.

    Returns the extension files written, relative to `target` (one per module,
    plus mypyc's shared library at the top). `target/livemetrics` is then an
    importable package: the copied `.py` files with their extensions beside them.

    `profile_guided` compiles twice: an instrumented build replays `TRAINING`,
    then the build that ships is laid out by the branch counts it wrote (GCC's
    PGO: hot paths together, error paths out of the way; about twice as long).
    """
    # only sources: a stray extension or bytecode in the checkout must not ship
    ignore = shutil.ignore_patterns("*.so", "*.pyc", "__pycache__")
    shutil.copytree(source, target / "livemetrics", ignore=ignore, dirs_exist_ok=True)
    modules = sorted(str(p.relative_to(target)) for g in COMPILED_MODULES for p in target.glob(g))
    if profile_guided:
        _mypyc(target, modules, PROFILE_GENERATE)
        _train(target)
        # the objects and extensions go; the counts (*.gcda beside the objects) stay
        for built in [*target.rglob("*.o"), *target.rglob("*.so")]:
            built.unlink()
        _mypyc(target, modules, PROFILE_USE)
    else:
        _mypyc(target, modules, ())
    shutil.rmtree(target / "build", ignore_errors=True)
    return sorted(p.relative_to(target) for p in target.rglob("*.so"))


def _mypyc(target: Path, modules: list[str], flags: tuple[str, ...]) -> None:
    """Run mypyc on `modules` in `target`, with `CFLAGS` and `flags` after the caller's CFLAGS."""
    cflags = " ".join((os.environ.get("CFLAGS", ""), *CFLAGS, *flags)).strip()
    _run(
        [sys.executable, "-m", "mypyc", "--python-version", "3.11", *modules],
        target,
        dict(os.environ, CFLAGS=cflags),
        f"mypyc could not compile the core (set {PURE_PYTHON_VARIABLE}=1 for a pure wheel)",
    )


def _train(target: Path) -> None:
    """Run `TRAINING` on the instrumented build in `target` (its counts land beside its objects)."""
    _run(
        [sys.executable, "-c", TRAINING],
        target,
        dict(os.environ, PYTHONPATH=str(target)),
        f"the profile-guided build's training replay failed (unset {PROFILE_GUIDED_VARIABLE} "
        "for a build without it)",
    )


def _run(command: list[str], target: Path, env: dict[str, str], failure: str) -> None:
    """Run one step of the build in `target`; when it fails, raise `failure` with its output."""
    done = subprocess.run(command, cwd=target, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{failure}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")


class CompiledCoreHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "standard" or os.environ.get(PURE_PYTHON_VARIABLE) == "1":
            return
        self._workdir = tempfile.TemporaryDirectory(prefix="livemetrics-mypyc-")
        target = Path(self._workdir.name)
        profile_guided = os.environ.get(PROFILE_GUIDED_VARIABLE) == "1"
        source = Path(self.root) / "src" / "livemetrics"
        for extension in compile_core(source, target, profile_guided):
            build_data["force_include"][str(target / extension)] = str(extension)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        workdir = getattr(self, "_workdir", None)
        if workdir is not None:
            workdir.cleanup()
