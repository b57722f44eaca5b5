#!/usr/bin/python3
"""check_prom.py FILE: is FILE valid Prometheus text exposition (format 0.0.4)?

The grammar is checked by Prometheus' own Python parser (Debian's
python3-prometheus-client), which raises on a malformed line.  On top of that,
the rules a scraper relies on and the parser lets pass:
  - every sample belongs to a family announced by # HELP and # TYPE, each
    announced once, before its samples, and its samples are contiguous;
  - metric and label names match the format's patterns, and no series
    (name + labels) appears twice;
  - counters and histogram parts are finite and not negative;
  - a histogram's buckets grow with le, end at le="+Inf", and that bucket
    equals _count.
Prints what is wrong and exits 1; exits 0 silently when all is well.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def main(path):
    text = open(path, encoding="utf-8").read()
    errors = []
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own error: a malformed line
        print(f"{path}: not valid exposition text: {e}")
        return 1

    # Order and announcement rules, read off the raw lines.
    announced = {}  # name -> set of "HELP"/"TYPE"
    finished = set()
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# "):
            parts = line.split(" ", 3)
            if parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if parts[1] in announced.setdefault(name, set()):
                    errors.append(f"line {n}: a second # {parts[1]} for {name}")
                announced[name].add(parts[1])
                if name in finished:
                    errors.append(f"line {n}: {name} announced again after its samples")
            continue
        name = re.match(r"[^{ ]*", line).group(0)
        family = next((f for f in announced if name == f or
                       (name.startswith(f + "_") and name[len(f) + 1:] in
                        ("bucket", "sum", "count"))), None)
        if family is None:
            errors.append(f"line {n}: sample {name} has no # HELP/# TYPE")
            continue
        if announced[family] != {"HELP", "TYPE"}:
            errors.append(f"line {n}: {family} lacks # HELP or # TYPE")
        if family != current:
            if family in finished:
                errors.append(f"line {n}: samples of {family} are not contiguous")
            if current:
                finished.add(current)
            current = family

    seen = set()
    for f in families:
        if not METRIC_RE.match(f.name):
            errors.append(f"bad metric name {f.name!r}")
        buckets = {}
        counts = {}
        for s in f.samples:
            for k in s.labels:
                if not LABEL_RE.match(k) or k.startswith("__"):
                    errors.append(f"{s.name}: bad label name {k!r}")
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                errors.append(f"series {s.name}{s.labels} appears twice")
            seen.add(key)
            if f.type in ("counter", "histogram") and (math.isnan(s.value) or s.value < 0):
                errors.append(f"{s.name}{s.labels}: {s.value} for a {f.type}")
            if f.type == "histogram":
                rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                if s.name.endswith("_bucket"):
                    le = s.labels.get("le")
                    if le is None:
                        errors.append(f"{s.name}{s.labels}: a bucket without le")
                        continue
                    buckets.setdefault(rest, []).append((float(le), s.value))
                elif s.name.endswith("_count"):
                    counts[rest] = s.value
        for rest, bs in buckets.items():
            les = [b[0] for b in bs]
            if les != sorted(les) or les[-1] != math.inf:
                errors.append(f"{f.name}{dict(rest)}: buckets not in order or no le=\"+Inf\"")
            vals = [b[1] for b in bs]
            if any(a > b for a, b in zip(vals, vals[1:])):
                errors.append(f"{f.name}{dict(rest)}: bucket counts decrease")
            if counts.get(rest) != vals[-1]:
                errors.append(f"{f.name}{dict(rest)}: +Inf bucket {vals[-1]} != _count {counts.get(rest)}")

    for e in errors:
        print(f"{path}: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
