"""fedflow benchmarks: `make bench` (bench/run.py) and `make bench-peers` (bench/dbos_workloads.py).

Nothing here is imported by fedflow itself; see bench/README.md.
"""
