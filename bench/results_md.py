"""bench/RESULTS.md holds one section per benchmark script, each between its own markers, so that every
script rewrites only its own section; the text outside the markers is kept as it is."""

import os

K_TITLE = """# Benchmark results

Each section below is written by the script it names; a rerun replaces only that section. Every ratio is
measured against its peers in the same run, on the machine the section names; none is a threshold anywhere.

`./bench/run-all.sh` writes the sections that compare coldscan with in-guest antivirus (issue 6):
- [Scan storm (simulated)](#scan-storm-simulated-storm-benchsh): peak load per host and datastore over time,
  with and without the scheduler's caps;
- [Full-disk scan: the template](#full-disk-scan-the-template-ext4-coldscan-vs-in-guest-clamav) and
  [the NTFS disk](#full-disk-scan-the-windows-like-ntfs-disk-coldscan-vs-in-guest-clamav): coldscan's two
  paths vs `clamscan -r` and `clamdscan --multiscan --fdpass`;
- [Unchanged re-scan](#unchanged-re-scan-coldscan-warm-vs-cold-and-clamds-in-memory-cache),
  [Signature update](#signature-update-re-scan-after-one-new-signature) and
  [Clone fleet](#clone-fleet-the-template-plus-n-clones-vs-n1-full-scans);
- [Gate latency](#gate-latency-with-a-warm-cache-gate-latencysh) through a real `coldscan serve`.

[Sandbox overhead](#engine-sandbox-overhead-issue-7-sandbox-benchsh) (`bench/sandbox-bench.sh`) is at
the end. Below the issue-6 sections are the earlier single-purpose benchmarks (`cache-bench.sh`, `direct-bench.sh`), kept with the
targets of the issues they were written for.
"""


def replace_section(path, name, text):
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    current = open(path, encoding="utf-8").read() if os.path.exists(path) else K_TITLE
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in current:
        head, rest = current.split(begin, 1)
        _, tail = rest.split(end, 1)
        updated = head + block + tail
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(updated)
    os.replace(path + ".tmp", path)
