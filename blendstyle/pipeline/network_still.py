"""``method: network`` on a still, or on a folder of stills: the network is trained on random views of the
stills themselves, then each picture goes through it whole, in one pass; a folder of photos gets one
network, and one look, for all of them.

It is no substitute for the optimiser at print sizes: there the style's strokes are far larger than the
training crops and the network's field of view, and it learns the painting's colours only (a 4724 px
print of coffee in The Starry Night at the defaults: 13 minutes on a 2-core CPU, 28 s of it the picture's
one pass, and no strokes). The optimiser's coarse scales lay those out.

The mode reads as a list of steps:

1. set up as a clip of one frame (:class:`~blendstyle.pipeline.clip.ClipRenderer`: the still, or a
   folder's first, read at the job's size; the style targets of that size blended once);
2. obtain the network as a clip's mode does (:func:`~blendstyle.pipeline.network.obtain`: applied,
   reused, or trained here or on a farm's worker, with a checkpoint a stop keeps); a still pairs with
   itself, so there is no temporal term;
3. each still through the network (with ``network.refine``, then optimised that many iterations from
   the network's picture), written as the optimising mode writes a still (``output.format``, 16-bit,
   print size, opacity): a still's picture as ``<name>.<format>``, a folder's as ``<its stem>.<format>``;
4. the sheet (of the first still), the loss plot of the training, the network's file and the record.

A stop keeps the network (and the pictures written); the next run applies it again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..files.images import read_alpha, read_image, write_image
from ..nst.optimize import Step
from .clip import ClipRenderer
from .context import Run, Saved
from .network import NetworkFarm, Trained, network_path, network_record, obtain, stylise
from .outputs import record, transparency, write_extras
from .result import RenderResult


def render_network_still(run: Run, farm: NetworkFarm | None = None) -> RenderResult:
    """``farm``: the network is trained on one of its workers; the pictures go through it here."""
    job = run.job
    folder = Path(job.content).is_dir()
    run.reporter.stage("reading the stills" if folder else "reading the still")
    renderer = ClipRenderer(run)
    trained = obtain(run, renderer, farm)
    if farm is not None and trained.source != "trained":  # said, not ignored: --workers asked for a spread
        run.reporter.stage(f"the network is {'given' if trained.source == 'applied' else 'trained already'}, so the "
                           "workers have nothing to train: the pictures go through it here")
    fmt, mark, sources = job.output.format, run.seconds(), renderer.stills
    files, stills = [], []
    # The first still's picture, refining steps and final loss: the sheet's and the record's.
    first: tuple[torch.Tensor, torch.Tensor, list[Step], dict] | None = None

    def kept(result) -> Saved:
        where = f"after {len(stills)} of {len(sources)} pictures" if folder else "before the picture was written"
        return Saved({"stills_done": len(stills)}, f"{where}; the network is kept ({network_path(run).name}) for the next run")

    with run.guard(kept, renderer.clip.size):
        for number, source in enumerate(sources):
            run.check()
            run.reporter.stage(f"{source.name} through the network" + (f" ({number + 1} of {len(sources)})" if folder else ""))
            with run.reading(("content",)):
                original = read_image(source, job.size, job.max_input_pixels, decoded=run.decoded).to(run.device)
                alpha = read_alpha(source, job.size, job.max_input_pixels, decoded=run.decoded)
            alpha = None if alpha is None else alpha.to(run.device)
            picture, history, final = picture_of(renderer, trained, original, alpha)
            name = f"{source.stem if folder else job.name}.{fmt}"
            files.append(write_image(picture, run.folder / name, fmt, alpha, depth=job.output.depth, dpi=job.output.dpi))
            stills.append({"content": source.name, "output": name, "width": original.shape[-1],
                           "height": original.shape[-2], "transparent": alpha is not None}
                          | ({"final_loss": final} if final else {}))
            first = first or (original, picture, history, final)
    seconds = run.seconds() - mark
    original, picture, history, final = first
    files += write_extras(renderer.schedule, original, picture, list(trained.history))
    if trained.source != "applied":
        files.append(network_path(run))
    transparent = any(still["transparent"] for still in stills)
    done = record(
        run, renderer.schedule, stills[0]["width"], stills[0]["height"], renderer.memory,
        network=network_record(run, trained),
        iterations={"training": job.network.iterations if trained.source != "applied" else 0,
                    "training_done": len(trained.history), "refine": len(history)},
        timings={key: round(value, 4) for key, value in renderer.schedule.timings.items()}
        | {"pictures": round(seconds, 4), "per_picture": round(seconds / len(stills), 4), "total": round(run.seconds(), 4)},
        final_loss=final,
        loss_history=[round(step.total, 6) for step in history],
        outputs=[str(path.relative_to(run.folder)) for path in files],
        transparent=transparency(transparent, fmt),
        **({"stills": stills} if folder else {}),
    )
    return RenderResult(job.name, run.folder, files[0], files + [run.write(done)], done, None)


def picture_of(renderer: ClipRenderer, trained: Trained, original: torch.Tensor, alpha: torch.Tensor | None
               ) -> tuple[torch.Tensor, list[Step], dict]:
    """A still's picture in the output's colours, the refining steps and their final loss terms.

    A 16-bit output's picture goes through the network in float32 whatever the run's precision: under bf16
    autocast its activations carry bf16's rounding into the picture (a 0.2-0.8 ramp came out five times as
    rough, 0.59 against 0.11 8-bit levels between neighbours, jumps of up to 1,538 16-bit levels), which a
    16-bit file is asked for to avoid; one pass costs about twice a bf16 one on a CPU."""
    run, stylizer = renderer.run, renderer.stylizer
    precision = None if run.job.output.depth == 16 else run.precision
    start = stylise(trained.net, stylizer.prepare(original), precision)
    if not run.job.network.refine:
        return stylizer.finish(start, original), [], {}
    renderer.schedule.set_visible(alpha)
    rendered = renderer.follow(0, original, start, [], run.job.network.refine)
    return rendered.image, rendered.history, rendered.final
