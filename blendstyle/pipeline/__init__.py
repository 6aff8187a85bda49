"""Runs: progress events, the run context (record, guard, resume), the stylizer of a scale, one schedule
(scales, then whole or tiles), a clip's renderer and the ways of producing its frames (frames.py), the farm
protocols with the chunk plan, the outputs every mode writes (outputs.py), and thin modes on top: still,
animation, sweep, study."""
