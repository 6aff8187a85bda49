"""Side-by-side benchmarks; run ``python -m benchmarks.gif`` from the repository root."""
