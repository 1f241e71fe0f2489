"""Size limits of the code base, run by `make lint`: no module over 400 lines, no
function over 60 lines (docstring included), in cardlib/, hsm/, tools/, tests/ and bench/.
Prints every offender and exits 1 if there is one."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
ROOTS = ("cardlib", "hsm", "tools", "tests", "bench")


def offences(path: Path, shown: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    lines = text.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"{shown}: {lines} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, str(shown))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{shown}:{node.lineno}: {node.name}() is {length} lines "
                             f"(limit {MAX_FUNCTION_LINES})")
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    problems = [problem for top in ROOTS for path in sorted((root / top).rglob("*.py"))
                for problem in offences(path, path.relative_to(root))]
    print("\n".join(problems) or "sizes: every module <= 400 lines, every function <= 60 lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
