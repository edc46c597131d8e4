"""Benchmarks that print JSON: ``python -m gptheory.bench score`` or ``python -m gptheory.bench train``.

Each benchmark times our code against a peer in the same run; see the module of each for details.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("score", "train")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BENCHMARKS:
        sys.exit(f"usage: python -m gptheory.bench {{{','.join(BENCHMARKS)}}} [options]")
    importlib.import_module(f"gptheory.bench.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    main()
