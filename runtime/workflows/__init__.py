"""Workflows: jobs that wait for other jobs.

Built on ``runtime.jobs`` and kept in the store like everything else. So far
this holds dependencies (:mod:`runtime.workflows.dependencies`): a job
enqueued with ``depends_on`` waits ``blocked`` until the jobs it names have
completed, and ends ``skipped`` if one of them fails, is canceled, times out
or is skipped (unless it runs on failure). The store settles dependents in
the transaction that records their dependency's ending, so a restart finds
them exactly where they were. See docs/workflows.md.
"""
