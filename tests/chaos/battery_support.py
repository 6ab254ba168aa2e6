"""What the chaos battery's tests share: their time limit.

A few seconds each on an idle machine, many times that on a loaded one; no
limit under ``--long``, which runs for as long as it is asked to (pytest-timeout
lets a test's marker win over ``--timeout``, so the marker itself looks at the
command line).
"""

from __future__ import annotations

import sys

import pytest

CI_TIMEOUT = 600

chaos_timeout = pytest.mark.timeout(0 if "--long" in sys.argv else CI_TIMEOUT)
