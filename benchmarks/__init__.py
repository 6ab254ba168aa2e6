"""Callboard's benchmark harness: workloads run side by side with peers and limits.

Run it with ``python -m benchmarks``. The runner (``runner``) starts one fresh
subprocess per (system, workload, repetition, step); that subprocess
(``child``) imports one driver from ``benchmarks.drivers`` and prints one JSON
line of measurements. Peers run in their own virtualenvs, so this package and
everything a child imports before its driver use the standard library only.
"""
