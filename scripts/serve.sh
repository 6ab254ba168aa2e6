#!/usr/bin/env bash
# Set up, then run the service on ./callboard.db with the demo job types.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/callboard serve --demo "$@"
