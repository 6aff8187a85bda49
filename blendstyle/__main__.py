"""``blendstyle`` and ``python -m blendstyle``: Ctrl-C and SIGTERM become stop requests before anything else is
imported, then the command line runs.

The command line imports click, rich, pydantic and, to render, torch: seconds in which a signal would
otherwise raise wherever the interpreter happens to be, tearing an import half-way. Here a signal is only
noted; ``run`` honours it at its first safe point, every other command gives the signals back and ends at
once if one came. Once the command is over, a signal during the interpreter's teardown ends the process at
once with the signal's exit code.
"""

from __future__ import annotations

from .pipeline.stopping import StopRequest


def main() -> None:
    early = StopRequest()
    early.install()
    try:
        from .cli import main as command_line

        command_line(obj=early)
    finally:  # the command's outcome is settled: a signal in the interpreter's teardown ends it at once
        early.leave()


if __name__ == "__main__":
    main()
