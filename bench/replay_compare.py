"""`replay` of this tree side by side with another commit's, in one run (a ratio, not absolutes).

    .venv/bin/python bench/replay_compare.py [--base REF] [--conversations 10000] [--rounds 3]

This machine is shared and noisy, so a replay rate measured alone says little;
two trees measured in turns, on the same bytes, in one run, say how a change
moved it. The script writes one generated stream to a temporary file, checks
out `--base` (default `HEAD`) into a temporary git worktree, then runs
`replay_lines` on that file in fresh child processes, alternating base and
this tree `--rounds` times. It prints JSON: every round's events/s, the best
of each tree and the ratio this/base, and whether both trees gave the same
reports (`--by tenant`, `agent,day` and `conversation`, compared by hash), so a
faster tree that computes something else shows.
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

CHILD = r"""
import gc, hashlib, json, sys, time
from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG

with open(sys.argv[1], "rb") as handle:
    lines = handle.readlines()
config = parse_config(STREAM_CONFIG)
gc.collect()
started = time.perf_counter()
result = replay_lines(lines, config)
seconds = time.perf_counter() - started
digest = hashlib.sha256()
for by in (("tenant",), ("agent", "day"), ("conversation",)):
    digest.update(json.dumps(result.report(config, ReportQuery(by=by)), sort_keys=True).encode())
print(json.dumps({"events": len(lines), "seconds": seconds, "report": digest.hexdigest()}))
"""


def run_child(src: Path, stream: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(stream)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"replay under {src} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git ref to compare with (default HEAD)")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from livemetrics.simulate.streams import generate_stream

    with tempfile.TemporaryDirectory(prefix="lm-replay-compare-") as tmp:
        stream = Path(tmp) / "stream.jsonl"
        print(f"generating {args.conversations} conversations ...", file=sys.stderr)
        lines = generate_stream(args.seed, conversations=args.conversations)
        stream.write_bytes(b"".join(line + b"\n" for line in lines))
        worktree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktree), args.base],
            check=True,
        )
        try:
            trees = {"base": worktree / "src", "this": ROOT / "src"}
            rates: dict[str, list[float]] = {"base": [], "this": []}
            reports: dict[str, str] = {}
            for round_no in range(1, args.rounds + 1):
                for name, src in trees.items():
                    measured = run_child(src, stream)
                    rates[name].append(measured["events"] / measured["seconds"])
                    reports[name] = measured["report"]
                    print(
                        f"round {round_no}/{args.rounds} {name}: {rates[name][-1]:,.0f} events/s",
                        file=sys.stderr,
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                check=False,
            )
    best = {name: max(values) for name, values in rates.items()}
    print(
        json.dumps(
            {
                "base": args.base,
                "events": measured["events"],
                "events_per_second": {k: [round(v) for v in vs] for k, vs in rates.items()},
                "best": {k: round(v) for k, v in best.items()},
                "ratio_this_over_base": round(best["this"] / best["base"], 3),
                "same_report": reports["base"] == reports["this"],
                "loadavg": os.getloadavg(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
