"""``python -m blendstyle.cli``: the command line, as ``blendstyle`` runs it (:mod:`blendstyle.__main__`, which
listens for stops earlier: before this package is imported)."""

from ..pipeline.stopping import StopRequest

early = StopRequest()
early.install()
from . import main  # noqa: E402  (after the handlers: a stop during the imports is only noted)

main(obj=early)
