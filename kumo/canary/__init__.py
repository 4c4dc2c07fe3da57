"""Health canaries: tiny servers booted through kumo's public API, checked, stopped and deleted,
per availability zone and per host; their results, and the verdict on each host (down-weighted,
then disabled with reason `canary`, re-enabled when it passes). See docs/canaries.md."""
