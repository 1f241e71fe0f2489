"""`make fuzz`: run every fuzz target (or FUZZ_TARGETS) under atheris for FUZZ_SECONDS
each, FUZZ_JOBS at a time, and print per target the executions, exec/s and crashes, and a
total. A crash input is saved as fixtures/fuzz/<target>/crash-<sha1 prefix> (replayed by
tests/unit/test_fuzz_regressions.py); after a crash the target starts again on the time
left (up to MAX_RESTARTS times). Exit status 1 if anything crashed.

Environment: FUZZ_SECONDS (default: about ten minutes in all, FUZZ_JOBS targets at a
time), FUZZ_TARGETS (names, comma or space separated), FUZZ_JOBS (default 2),
FUZZ_CORPUS (default /tmp/juki-fuzz-corpus: the corpus grows from run to run)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRASH_DIR = ROOT / "fixtures" / "fuzz"
TOTAL_BUDGET_SECONDS = 540  # plus start-up and restarts: about ten minutes
MAX_RESTARTS = 4
ARTIFACT = re.compile(r"^(crash|oom|timeout|leak|slow-unit)-")


@dataclass
class Outcome:
    name: str
    executions: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # the exception line of each crash
    error: str = ""


def _executions(output: str) -> int:
    stat = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    if stat:
        return int(stat.group(1))
    done = re.search(r"Done (\d+) runs", output)
    if done:
        return int(done.group(1))
    progress = re.findall(r"^#(\d+)\s", output, re.MULTILINE)
    return int(progress[-1]) if progress else 0


def _crash_reason(output: str) -> str:
    """The last line of the uncaught exception's traceback atheris printed."""
    after = output.split("Uncaught Python exception", 1)[-1]
    exception = re.compile(r"^[A-Za-z_.]+(Error|Violation|Exception)\b")
    lines = [line for line in after.splitlines() if exception.match(line)]
    return lines[-1][:200] if lines else "(no exception line)"


def _save_crashes(name: str, artifacts: Path) -> list[str]:
    saved = []
    for path in sorted(artifacts.iterdir()):
        if not ARTIFACT.match(path.name):
            continue
        data = path.read_bytes()
        kind = path.name.split("-", 1)[0]
        destination = CRASH_DIR / name / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        saved.append(str(destination.relative_to(ROOT)))
    return saved


def _seed_corpus(name: str, corpus: Path) -> None:
    from tests.fuzz.registry import load_all

    corpus.mkdir(parents=True, exist_ok=True)
    for seed in load_all()[name].seeds():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()[:12]}").write_bytes(seed)


def run_target(name: str, seconds: int, corpus_root: Path) -> Outcome:
    outcome = Outcome(name)
    corpus = corpus_root / name
    _seed_corpus(name, corpus)
    deadline = time.monotonic() + seconds
    log_dir = Path(tempfile.mkdtemp(prefix=f"juki-fuzz-{name}-"))
    for attempt in range(MAX_RESTARTS + 1):
        left = int(deadline - time.monotonic())
        if left < 1:
            break
        artifacts = Path(tempfile.mkdtemp(prefix=f"juki-fuzz-{name}-artifacts-"))
        command = [sys.executable, "-m", "tests.fuzz.run_one", name, f"-max_total_time={left}",
                   "-print_final_stats=1", "-timeout=20", "-rss_limit_mb=3072", "-max_len=4096",
                   f"-artifact_prefix={artifacts}/", str(corpus)]
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, errors="replace")
        outcome.seconds += time.monotonic() - started
        output = result.stdout + result.stderr
        (log_dir / f"run-{attempt}.log").write_text(output)
        outcome.executions += _executions(output)
        crashes = _save_crashes(name, artifacts)
        outcome.crashes += [c for c in crashes if c not in outcome.crashes]
        if crashes and _crash_reason(output) not in outcome.reasons:
            outcome.reasons.append(_crash_reason(output))
        if result.returncode != 0 and not crashes:
            outcome.error = f"exit {result.returncode}, no crash input; log in {log_dir}"
            break
        if result.returncode == 0:
            break
    if outcome.crashes:
        outcome.error = f"logs in {log_dir}"
    return outcome


def _report(outcomes: list[Outcome]) -> None:
    print(f"{'target':36} {'executions':>12} {'exec/s':>9} {'crashes':>8}")
    for item in outcomes:
        rate = item.executions / item.seconds if item.seconds else 0.0
        print(f"{item.name:36} {item.executions:>12,} {rate:>9,.0f} {len(item.crashes):>8}")
        for crash in item.crashes:
            print(f"    crash input: {crash}")
        for reason in item.reasons:
            print(f"    raised: {reason}")
        if item.error:
            print(f"    {item.error}")
    total = sum(item.executions for item in outcomes)
    crashes = sum(len(item.crashes) for item in outcomes)
    print(f"{'TOTAL':36} {total:>12,} {'':>9} {crashes:>8}")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.registry import load_all

    names = sorted(load_all())
    chosen = os.environ.get("FUZZ_TARGETS", "").replace(",", " ").split()
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(f"unknown fuzz targets: {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    names = chosen or names
    jobs = max(1, int(os.environ.get("FUZZ_JOBS", "2")))
    seconds = int(os.environ.get("FUZZ_SECONDS") or max(5, TOTAL_BUDGET_SECONDS * jobs // len(names)))
    corpus_root = Path(os.environ.get("FUZZ_CORPUS", "/tmp/juki-fuzz-corpus"))
    print(f"fuzzing {len(names)} targets, {seconds} s each, {jobs} at a time")
    with ThreadPoolExecutor(jobs) as pool:
        outcomes = list(pool.map(lambda name: run_target(name, seconds, corpus_root), names))
    _report(outcomes)
    return 1 if any(item.crashes or item.error for item in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
