"""What the tests and the benchmarks share (local servers, a filled delivery ledger, the
crash trials); kept out of the wheel, and importing neither tests/ nor bench/."""
