"""bench/RESULTS.md holds one section per benchmark script, each between its own markers, so that every
script rewrites only its own section."""

import os

K_TITLE = "# Benchmark results\n\nEach section below is written by the script it names; a rerun replaces only that section.\n"


def replace_section(path, name, text):
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if begin not in current:  # first run, or the file predates sections: keep only other sections
        sections = [part for part in current.split("<!-- BEGIN ")[1:]]
        current = K_TITLE + "".join("\n<!-- BEGIN " + part.rstrip() + "\n" for part in sections)
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
