"""The console scripts of tally."""
import os
import sys

from tabulate import tabulate

SAMPLE = "the quick brown fox\njumps over\nthe lazy dog\n"


def count(text: str) -> tuple[int, int]:
    return len(text.splitlines()), len(text.split())


def main() -> None:
    paths = sys.argv[1:]
    rows = []
    if not paths:
        rows.append(("<sample>", *count(SAMPLE)))
    for p in paths:
        with open(p, encoding="utf-8") as f:
            rows.append((p, *count(f.read())))
    print(tabulate(rows, headers=["file", "lines", "words"], tablefmt="github"))
    print(f"tally ran as uid {os.getuid()}")


def report() -> None:
    lines, words = count(SAMPLE)
    print(f"report: {lines} lines, {words} words")


def version() -> None:
    print("tally 2.0.1")
