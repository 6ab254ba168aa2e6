// What a job's status and the caller's role allow (runtime/status.py's table).

export const STATUSES = [
  "scheduled", "waiting", "locked", "running", "canceling", "suspending", "suspended",
  "resuming", "completed", "failed", "canceled", "timeout", "skipped",
];
export const TERMINAL = new Set(["completed", "failed", "canceled", "timeout", "skipped"]);
const PENDING = ["scheduled", "waiting", "locked"];

const LEGAL = {
  cancel: new Set([...PENDING, "suspended", "resuming", "running", "suspending"]),
  suspend: new Set([...PENDING, "running"]),
  resume: new Set(["suspended"]),
  retry: new Set(["failed", "timeout", "canceled"]),
  delete: TERMINAL,
};

export const ACTIONS = Object.keys(LEGAL);
const RANK = { viewer: 0, operator: 1, admin: 2 };

export function can(role, needed) {
  return (RANK[role] ?? -1) >= RANK[needed];
}

export function legal(action, job, jobType) {
  if (action === "suspend" && jobType && jobType.suspendable === false) return false;
  return LEGAL[action].has(job.status);
}
