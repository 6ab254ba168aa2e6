"""One module per system, imported only inside child processes.

A driver module exposes:

- ``STEPS``: a mapping from ``"<workload>.<step>"`` to a function taking a
  ``benchmarks.probe.Step`` and returning its metrics. Every measured step
  returns ``jobs`` (what it asked for) and ``verified`` (what it counted
  finished in the store afterwards, or stored, for enqueue workloads).
- ``versions()``: the versions of what it measures, for the report.

Drivers must not import from each other: each runs in its system's own
interpreter, which may lack the others' libraries.
"""
