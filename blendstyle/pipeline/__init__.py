"""Runs: progress events, the run context (record, guard, resume), the stylizer, one schedule (scales,
then whole or tiles), and thin modes on top: still, animation, sweep, study."""
