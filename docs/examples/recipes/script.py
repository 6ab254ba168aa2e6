"""A plain script: enqueue a job and leave (a worker elsewhere runs it)."""

from __future__ import annotations

import sys

from jobs import registry

from runtime import SyncClient


def main(url: str, email: str) -> str:
    with SyncClient(url, registry=registry) as client:
        job = client.enqueue("welcome", {"email": email})  # durable when it returns
        return str(job.id)


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2]))
