"""kdr benchmarks (scripts run from the repository root; not installed)."""
