"""Workflows: jobs made of steps, and jobs that wait for other jobs.

Built on ``runtime.jobs`` and kept in the store like everything else:

- steps (:mod:`runtime.workflows.steps`): a multi-step job runs a list of
  job types' handlers in order, each step's record written as it starts and
  ends, so a restart goes on at the step that had not ended;
- dependencies (:mod:`runtime.workflows.dependencies`): a job enqueued with
  ``depends_on`` waits ``blocked`` until the jobs it names have completed,
  and ends ``skipped`` if one of them fails, is canceled, times out or is
  skipped (unless it runs on failure). The store settles dependents in the
  transaction that records their dependency's ending.

See docs/workflows.md.
"""
