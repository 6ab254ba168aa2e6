"""A parent's status hook for its children's changes (``child`` events).

A ``child`` event names its parent but not the parent's hook: the child's
row does not carry it. The dispatcher looks the parent up, once per parent
for one without a hook (a job's hook never changes, so the answer is kept,
within a bound), and afresh for one with a hook, whose delivery then carries
the parent's current status and revision.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from runtime.domain.errors import JobNotFound
from runtime.domain.models import JobEvent
from runtime.runtime import Runtime

PARENTS_REMEMBERED_DEFAULT = 10_000
"""Parents without a hook remembered so, the least recently met forgotten first."""


class ParentHooks:
    """Turns a ``child`` event into one its parent's hook can be sent, or None."""

    def __init__(self, remembered: int = PARENTS_REMEMBERED_DEFAULT) -> None:
        self._unhooked: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._remembered = remembered

    async def hooked(self, rt: Runtime, event: JobEvent) -> JobEvent | None:
        """``event`` with its parent's hook, status and revision; None when the
        parent has no hook or is gone."""
        parent_id = event.job_id
        if parent_id in self._unhooked:
            self._unhooked.move_to_end(parent_id)
            return None
        try:
            parent = await rt.get(parent_id)
        except JobNotFound:
            return None
        if not parent.status_hook:
            self._unhooked[parent_id] = None
            if len(self._unhooked) > self._remembered:
                self._unhooked.popitem(last=False)
            return None
        # The payload's status is the parent's; the child's is in its metadata.
        update = {
            "status_hook": parent.status_hook,
            "revision": parent.revision,
            "status": parent.status,
        }
        return event.model_copy(update=update)
