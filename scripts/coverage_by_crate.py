#!/usr/bin/env python3
"""Sums cargo llvm-cov's per-file summary (its text table) into lines covered per crate.

cargo llvm-cov names files relative to the directory they all share: the workspace root when
the whole workspace was measured (`shared/src/…`, `adapters/src/…`), the crate's `src/` when
one crate was (`-p flowline-core`: `flows/service.rs`), whose lines are then all that crate's.
"""

import re
import sys

rows = []
for line in open(sys.argv[1]):
    parts = line.split()
    if not parts or not parts[0].endswith(".rs"):
        continue
    # Columns: Regions, Missed, Cover, Functions, Missed, Executed, Lines, Missed, Cover, ...
    numbers = [p for p in parts[1:] if re.fullmatch(r"\d+", p)]
    if len(numbers) < 6:
        continue
    rows.append((parts[0], int(numbers[4]), int(numbers[5])))

one_crate = not any("/src/" in path or path.startswith("src/") for path, _, _ in rows)
totals = {}
for path, lines, missed in rows:
    if one_crate:
        crate = "(the one crate measured)"
    elif "/src/" in path:
        crate = path.split("/src/")[0]
    else:
        crate = "flowline (local server)" if path.startswith("src/") else path.split("/")[0]
    covered, total = totals.get(crate, (0, 0))
    totals[crate] = (covered + lines - missed, total + lines)

print(f"\n{'crate':40} {'lines':>8} {'covered':>8} {'cover':>7}")
for crate, (covered, total) in sorted(totals.items()):
    print(f"{crate:40} {total:8} {covered:8} {100 * covered / total:6.1f}%")
