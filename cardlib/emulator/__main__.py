"""``python -m cardlib.emulator --state FILE --port N``: run one virtual card."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .runner import run_card
from .vpcd import DEFAULT_HOST


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one emulated card attached to vpcd.")
    parser.add_argument("--state", required=True, type=Path, help="card state file")
    parser.add_argument("--port", required=True, type=int, help="vpcd port of the reader")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--netns", help="network namespace to join first (rig isolation)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_card(args.state, args.port, args.host, args.netns)


if __name__ == "__main__":
    main()
