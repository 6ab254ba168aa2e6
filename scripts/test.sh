#!/usr/bin/env bash
# Set up, then lint, type-check and run the whole test suite.
# PostgreSQL tests use CALLBOARD_TEST_POSTGRES_URL (default: the local server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The dashboard's browser tests drive Debian's Chromium (Playwright cannot
# download its own browser here); under CI a missing browser fails them.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
export CALLBOARD_TEST_POSTGRES_URL="${CALLBOARD_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
