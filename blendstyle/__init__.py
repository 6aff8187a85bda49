"""blendstyle: declarative neural style transfer with weighted blends of several styles.

The Python API, for notebooks and scripts (the CLI is a thin layer over it)::

    import blendstyle
    loaded = blendstyle.load_job("jobs/starry_cat.yaml", {"size": 256})
    result = blendstyle.render_job(loaded, out_root="outputs")
    result.image.show(); print(result.record["final_loss"])
"""

from __future__ import annotations

__all__ = ["BlendstyleError", "load_job", "render_job", "run_job", "__version__"]

from .errors import BlendstyleError
from .version import __version__


def load_job(path, overrides=None, iterations=None):
    """Read and validate a job file (``iterations``: as the command line's ``--iterations``); see
    :func:`blendstyle.config.load.load_job` (imported when first asked for, so that ``import blendstyle``
    is quick: the command line listens for Ctrl-C and SIGTERM first)."""
    from .config.load import load_job as load

    return load(path, overrides, iterations=iterations)


def render_job(loaded, out_root="outputs", reporter=None, force=False, allow_outside=False):
    """Run a loaded job (``force``: as ``run --force``, from the start even when up to date); see
    :func:`blendstyle.pipeline.render.render` (imported lazily: it pulls in torch)."""
    from .pipeline.render import render

    return render(loaded, out_root=out_root, reporter=reporter, force=force, allow_outside=allow_outside, fresh=force)


def run_job(path, overrides=None, out_root="outputs", reporter=None, force=False, iterations=None):
    """Load the job file at ``path``, apply ``overrides`` (key path -> value) and ``iterations`` (as
    ``--iterations``) and render it."""
    return render_job(load_job(path, overrides, iterations), out_root=out_root, reporter=reporter, force=force)
