"""Cold start of ``juki --help``: this tree against another commit, in the same run.

    .venv/bin/python bench/cli_startup.py [--baseline REF] [--runs 30]

Both trees run under the same interpreter as ``python -m tools --help`` (the current
directory comes first on ``sys.path``, so each run imports its own tree). The floor is a
bare ``python -c pass`` start of the same interpreter; every figure is also printed as a
multiple of it. Runs alternate between the trees so that machine noise hits both.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git ref to compare with (default HEAD)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(baseline), args.baseline],
                       cwd=ROOT, check=True)
        try:
            help_command = [sys.executable, "-m", "tools", "--help"]
            trees = {"floor (python -c pass)": ([sys.executable, "-c", "pass"], ROOT),
                     f"baseline {args.baseline}": (help_command, baseline),
                     "this tree": (help_command, ROOT)}
            times: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(args.runs + 1):  # the first round warms the page cache
                for name, (command, cwd) in trees.items():
                    times[name].append(one_run(command, cwd))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT,
                           check=True)
    medians = {name: statistics.median(values[1:]) for name, values in times.items()}
    floor = medians["floor (python -c pass)"]
    for name, median in medians.items():
        print(f"{name:28} median {median * 1000:7.1f} ms  ({median / floor:5.2f}x the floor)")
    base, this = medians[f"baseline {args.baseline}"], medians["this tree"]
    print(f"this tree / baseline: {this / base:.3f}")


if __name__ == "__main__":
    main()
