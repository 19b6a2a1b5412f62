"""A short run of the mutation fuzzer through the live server, for every endpoint: every answer is
an image or a JSON 4xx, valid files sent in between get their images, and no worker restarts
(the management API's worker PIDs are the same before and after)."""
from __future__ import annotations

import os

import pytest

from archives.build import endpoints
from tests.fuzz.run import fuzz_live, sample_cases

PER_ENDPOINT = int(os.environ.get("FUZZ_LIVE_N", "48"))


@pytest.mark.parametrize("endpoint", endpoints())
def test_fuzzed_uploads_never_fail_anyone_else_nor_kill_the_worker(live, endpoint):
    tally, before, after = fuzz_live(live.server, endpoint, sample_cases(PER_ENDPOINT, seed=len(endpoint) + 100))
    assert not tally.crashes, tally.report(endpoint)
    assert tally.counts["image"] > 0
    assert before and before == after, f"worker PIDs {before} -> {after}"
