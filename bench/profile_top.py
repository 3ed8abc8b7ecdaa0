"""Summarise py-spy raw (collapsed) profiles: the costliest frames, with file:line.

    .venv/bin/py-spy record --format raw -o prof.txt -- .venv/bin/python bench/incremental.py ...
    .venv/bin/python bench/profile_top.py prof.txt [--top 15]

``--within evaluate_pending`` keeps only the samples under that function.
Prints, per file, the frames of this project (engine/, api/, rules/) by inclusive share of
the samples (time spent in them and what they call), then all frames by self share.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+):(?P<line>\d+)\)$")
OURS = ("engine/", "api/", "rules/")


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/main/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def summarise(path: Path, top: int, within: str | None = None) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or (within and within not in stack):
            continue
        n = int(count)
        total += n
        frames = []
        for frame in stack.split(";"):
            match = FRAME.match(frame.strip())
            if match:
                frames.append(f"{match['func']} ({_short(match['file'])}:{match['line']})")
        for name in set(frames):
            inclusive[name] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return f"{path.name}: no samples"
    scope = f" within {within}" if within else ""
    lines = [f"{path.name}: {total} samples{scope}", "  inclusive, this project's frames:"]
    ours = [(k, v) for k, v in inclusive.most_common() if any(o in k for o in OURS)]
    lines += [f"    {v / total:6.1%}  {k}" for k, v in ours[:top]]
    lines.append("  self, all frames:")
    lines += [f"    {v / total:6.1%}  {k}" for k, v in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--within", help="only samples whose stack names this, e.g. a function")
    args = parser.parse_args()
    for file in args.files:
        print(summarise(file, args.top, args.within))
        print()


if __name__ == "__main__":
    main()
