"""The fuzz tier (`make fuzz`): hypothesis against every parser of outside input. In `make
test` each target runs a small budget; `make fuzz` sets UPSTREAM_FUZZ_EXAMPLES (1,000 by
default there) and prints hypothesis's statistics per target."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("UPSTREAM_FUZZ_EXAMPLES", "60"))
settings.register_profile("fuzz", max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])
settings.load_profile("fuzz")
