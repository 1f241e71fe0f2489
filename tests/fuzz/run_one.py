"""Run one fuzz target under atheris: ``python -m tests.fuzz.run_one NAME [libFuzzer args]``.
The code under test (cardlib, tools) is instrumented for coverage as it is imported."""

from __future__ import annotations

import sys


def main() -> None:
    import atheris

    name, libfuzzer_args = sys.argv[1], sys.argv[2:]
    with atheris.instrument_imports(include=["cardlib", "tools"]):
        from tests.fuzz.registry import load_all

        targets = load_all()
        fuzz_target = targets[name]
        for seed in fuzz_target.seeds():  # builds the personalised cards before the clock runs
            fuzz_target.run(seed)
    atheris.Setup([sys.argv[0], *libfuzzer_args], fuzz_target.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
