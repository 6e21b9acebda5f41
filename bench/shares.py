#!/usr/bin/env python3
"""Each scenario of a bench/ab.sh or bench/run.sh report as a share of GET /healthz.

    python3 bench/shares.py < report.txt

For every run of a build ("=== round N: BUILD"), each scenario's requests/s is
divided by the mean of the `fixed` (GET /healthz through chirp) runs just
before and just after it; p99 and max are the scenario's, over all its requests.
"""
import re
import sys


def main() -> None:
    rows = []  # (build label, scenario, req/s, p99, max, healthz before, healthz after)
    build = "run"
    scenario = None
    last_fixed = None
    pending = []  # scenarios waiting for the next fixed
    for line in sys.stdin:
        if m := re.match(r"=== round (\d+): (\S+)", line):
            for p in pending:
                rows.append((*p, None))
            pending = []
            build, last_fixed = f"{m.group(2).rstrip('/').split('/')[-1]} #{m.group(1)}", None
        elif m := re.match(r"## ([\w-]+)", line):
            scenario = m.group(1)
        elif line.startswith("all ") and scenario:
            fields = line.split()
            rate, p99, most = float(fields[3]), float(fields[6]), float(fields[7])
            if scenario == "fixed":
                for p in pending:
                    rows.append((*p, rate))
                pending = []
                last_fixed = rate
            else:
                pending.append((build, scenario, rate, p99, most, last_fixed))
            scenario = None
    for p in pending:
        rows.append((*p, None))
    print(f"{'build':<18} {'scenario':<12} {'req/s':>9} {'p99 ms':>8} {'max ms':>8} {'healthz around':>17} {'share':>7}")
    for build, scenario, rate, p99, most, before, after in rows:
        around = [h for h in (before, after) if h]
        share = f"{100 * rate / (sum(around) / len(around)):.1f}%" if around else "-"
        healthz = "/".join(f"{h / 1000:.1f}k" for h in around)
        print(f"{build:<18} {scenario:<12} {rate:>9,.0f} {p99:>8.1f} {most:>8.1f} {healthz:>17} {share:>7}")


if __name__ == "__main__":
    main()
