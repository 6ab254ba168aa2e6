"""The vocabulary every layer shares: errors, job statuses and their
transitions, the clock, the records users read (``Job``, ``JobEvent``, log
entries), rate limits and number checks.

Plain values and pure functions, no I/O. Modules here import nothing from
``runtime`` outside ``runtime.domain`` and nothing from ``actors``; the
whole product may import them.
"""
