"""Schedules: how a schedule fires.

Trigger specs (date, interval, cron, calendar fields), the ``Schedule``
record and its firing rules (overlap, misfire, catch-up), the scheduler
service that fires due slots exactly once, the schedule methods of
``Runtime``, and tiered retention. Modules here may import ``runtime.jobs``
(a firing enqueues jobs), ``runtime.store``, ``runtime.domain`` and
``actors``, never the facade or the interfaces.
"""
