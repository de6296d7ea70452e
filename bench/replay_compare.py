"""`replay` of this tree side by side with another commit's, in one run (a ratio, not absolutes).

    .venv/bin/python bench/replay_compare.py [--base REF] [--conversations 10000] [--rounds 3]
                                             [--instructions 20000] [--extra-field NAME]

This machine is shared and noisy, so a replay rate measured alone says little;
two trees measured in turns, on the same bytes, in one run, say how a change
moved it. The script writes one generated stream to a temporary file, checks
out `--base` (default `HEAD`) into a temporary git worktree, then runs
`replay_lines` on that file in fresh child processes, alternating base and
this tree `--rounds` times. It prints JSON: every round's events per wall
second and per CPU second of the child (less moved by other processes on a
shared core), the best of each tree and the ratio this/base, and whether
both trees gave the same reports (`--by tenant`, `agent,day` and
`conversation`, compared by hash), so a faster tree that computes something
else shows. `--instructions N` also counts, under callgrind, the
instructions each tree executes to replay the first N lines: a ratio that
the machine's load does not move. `--compiled` compares this tree's pure
core with its mypyc-compiled build (`scripts/dev compiled`) instead; with
`--base-dir DIR` as well, the compiled build is compared with DIR, any
importable tree (such as another commit's wheel unpacked, the way
`scripts/dev compiled` unpacks this one's). `--base-python PY` runs the
base under another interpreter (such as another venv's python: a build of
CPython with or without PGO and LTO). `--extra-field NAME` adds a field
NAME to every line, as a platform that adds its own metadata to each event
does: the input that is valid but leaves the structs' one-pass decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILED = ROOT / ".build" / "compiled"

CHILD = r"""
import gc, hashlib, json, sys, time
from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG

with open(sys.argv[1], "rb") as handle:
    lines = handle.readlines()[: int(sys.argv[2])]
config = parse_config(STREAM_CONFIG)
gc.collect()
started, cpu_started = time.perf_counter(), time.process_time()
result = replay_lines(lines, config)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
digest = hashlib.sha256()
for by in (("tenant",), ("agent", "day"), ("conversation",)) if sys.argv[3] == "report" else ():
    digest.update(json.dumps(result.report(config, ReportQuery(by=by)), sort_keys=True).encode())
print(json.dumps({"events": len(lines), "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "report": digest.hexdigest()}))
"""


def run_child(
    src: Path,
    stream: Path,
    limit: int,
    prefix: tuple[str, ...] = (),
    report: bool = True,
    python: str = sys.executable,
) -> dict:
    """Replay the first `limit` lines of `stream` with the code of `src`, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [*prefix, python, "-c", CHILD, str(stream), str(limit), "report" * report],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"replay under {src} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.splitlines()[-1])


def replay_instructions(src: Path, stream: Path, events: int, tmp: Path, python: str) -> int:
    """Instructions the replay of `events` lines executes, counted by callgrind.

    Counts do not move with the machine's load. The child's start (imports,
    reading the file) is measured apart, with no line replayed, and taken off;
    no report is built.
    """
    counts = []
    for limit in (events, 0):
        out_file = tmp / f"callgrind.{src.name}.{src.parent.name}.{limit}"
        prefix = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}")
        run_child(src, stream, limit, prefix, report=False, python=python)
        summary = next(
            line for line in out_file.read_text().splitlines() if line.startswith("summary:")
        )
        counts.append(int(summary.split()[1]))
    return counts[0] - counts[1]


def with_extra_field(line: bytes, name: str) -> bytes:
    """`line` with the field `name` added, when it is a JSON object (others as they are)."""
    body = line.rstrip()
    if not (body.startswith(b"{") and body.endswith(b"}")):
        return line
    field = json.dumps({name: {"region": "eu-1", "shard": 7}}).encode()[1:-1]
    return body[:-1] + b"," + field + b"}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git ref to compare with (default HEAD)")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="EVENTS",
        help="also count the instructions of replaying the first EVENTS lines under "
        "callgrind (slow: about 50x; 20000 takes a few minutes)",
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="compare this tree's pure core (base) with its mypyc-compiled build (this), "
        f"{COMPILED.relative_to(ROOT)} from `scripts/dev compiled`; --base is ignored",
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        help="with --compiled: the base is this importable tree instead of the pure core",
    )
    parser.add_argument(
        "--extra-field",
        metavar="NAME",
        help="add a field NAME (a small object) to every line that is a JSON object, as "
        "a platform that adds its own metadata to each event does (SPEC §7 [3]: ignored)",
    )
    parser.add_argument(
        "--base-python",
        default=sys.executable,
        help="the interpreter that runs the base (default: this one)",
    )
    args = parser.parse_args()
    if args.base_dir is not None and not (
        args.compiled and (args.base_dir / "livemetrics").is_dir()
    ):
        parser.error("--base-dir needs --compiled and a folder that holds livemetrics/")
    if args.compiled and not (COMPILED / "livemetrics").is_dir():
        parser.error(f"no compiled core in {COMPILED}: run scripts/dev compiled first")

    from livemetrics.simulate.streams import generate_stream

    with tempfile.TemporaryDirectory(prefix="lm-replay-compare-") as tmp:
        stream = Path(tmp) / "stream.jsonl"
        print(f"generating {args.conversations} conversations ...", file=sys.stderr)
        lines = generate_stream(args.seed, conversations=args.conversations)
        if args.extra_field:
            lines = [with_extra_field(line, args.extra_field) for line in lines]
        stream.write_bytes(b"".join(line + b"\n" for line in lines))
        worktree = Path(tmp) / "base"
        if args.compiled:
            trees = {"base": args.base_dir or ROOT / "src", "this": COMPILED}
        else:
            add = ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q"]
            subprocess.run([*add, str(worktree), args.base], check=True)
            trees = {"base": worktree / "src", "this": ROOT / "src"}
        try:
            wall: dict[str, list[float]] = {"base": [], "this": []}
            cpu: dict[str, list[float]] = {"base": [], "this": []}
            reports: dict[str, str] = {}
            pythons = {"base": args.base_python, "this": sys.executable}
            for round_no in range(1, args.rounds + 1):
                for name, src in trees.items():
                    measured = run_child(src, stream, len(lines), python=pythons[name])
                    wall[name].append(measured["events"] / measured["seconds"])
                    cpu[name].append(measured["events"] / measured["cpu_seconds"])
                    reports[name] = measured["report"]
                    print(
                        f"round {round_no}/{args.rounds} {name}: {wall[name][-1]:,.0f} events/s"
                        f" ({cpu[name][-1]:,.0f} per CPU second)",
                        file=sys.stderr,
                    )
            instructions = {
                name: replay_instructions(src, stream, args.instructions, Path(tmp), pythons[name])
                for name, src in trees.items()
                if args.instructions
            }
        finally:
            if not args.compiled:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                    check=False,
                )

    def summary(rates: dict[str, list[float]]) -> dict[str, object]:
        best = {name: max(values) for name, values in rates.items()}
        return {
            "rounds": {name: [round(v) for v in values] for name, values in rates.items()},
            "best": {name: round(v) for name, v in best.items()},
            "ratio_this_over_base": round(best["this"] / best["base"], 3),
        }

    print(
        json.dumps(
            {
                "base": str(args.base_dir or "pure core of this tree")
                if args.compiled
                else args.base,
                "this": f"{COMPILED.relative_to(ROOT)} (mypyc)" if args.compiled else "this tree",
                "pythons": pythons,
                "events": measured["events"],
                "events_per_second": summary(wall),
                "events_per_cpu_second": summary(cpu),
                "same_report": reports["base"] == reports["this"],
                **(
                    {
                        "instructions_per_event": {
                            name: round(count / args.instructions)
                            for name, count in instructions.items()
                        },
                        "instructions_ratio_base_over_this": round(
                            instructions["base"] / instructions["this"], 3
                        ),
                    }
                    if instructions
                    else {}
                ),
                "loadavg": os.getloadavg(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
