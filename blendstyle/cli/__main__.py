"""``python -m blendstyle.cli``."""

from . import main

main()
