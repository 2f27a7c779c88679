#!/usr/bin/env python3
"""Sums cargo llvm-cov's per-file summary (its text table) into lines covered per crate."""

import re
import sys

totals = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts or not parts[0].endswith(".rs"):
        continue
    path = parts[0]
    # Columns: Regions, Missed, Cover, Functions, Missed, Executed, Lines, Missed, Cover, ...
    numbers = [p for p in parts[1:] if re.fullmatch(r"\d+", p)]
    if len(numbers) < 6:
        continue
    lines, missed = int(numbers[4]), int(numbers[5])
    crate = path.split("/src/")[0] if "/src/" in path else path.split("/")[0]
    crate = crate or "flowline (local server)"
    covered, total = totals.get(crate, (0, 0))
    totals[crate] = (covered + lines - missed, total + lines)

print(f"\n{'crate':40} {'lines':>8} {'covered':>8} {'cover':>7}")
for crate, (covered, total) in sorted(totals.items()):
    print(f"{crate:40} {total:8} {covered:8} {100 * covered / total:6.1f}%")
