"""``python -m benchmarks``: the speed benchmark against pastiche (``benchmarks.speed``)."""

from .speed import main

main()
