"""Jobs: what a job is and how one runs, from enqueue to its outcome.

The registry of job types and queues, enqueueing, the handler's context
(progress, checkpoints, logs), the executor the engine drives, outcomes and
retries, control (cancel, suspend, resume, retry), event streams and the
sweeper of finished jobs. Modules here may import ``runtime.domain``,
``runtime.store`` and ``actors``, never the other concepts
(``runtime.schedules``), the facade or the interfaces: the other concepts
build on jobs, not the reverse.
"""
