"""``blendstyle`` and ``python -m blendstyle``: Ctrl-C and SIGTERM become stop requests before anything else is
imported, then the command line runs.

The command line imports click, rich, pydantic and, to render, torch: seconds in which a signal would
otherwise raise wherever the interpreter happens to be, tearing an import half-way. Here a signal is only
noted; ``run`` honours it at its first safe point, every other command gives the signals back and ends at
once if one came.
"""

from __future__ import annotations

from .pipeline.stopping import StopRequest


def main() -> None:
    early = StopRequest()
    early.install()
    from .cli import main as command_line

    command_line(obj=early)


if __name__ == "__main__":
    main()
