"""Render the README's pictures of the creative controls: ``python docs/pictures.py`` (about 15 minutes on a
2-core CPU). Each picture is a row of labelled panels built from the example jobs' outputs."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

import blendstyle

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "outputs" / "pictures"
HEIGHT = 200


def panel(image: Image.Image, label: str) -> Image.Image:
    image = image.convert("RGB")
    image = image.resize((round(image.width * HEIGHT / image.height), HEIGHT), Image.Resampling.LANCZOS)
    framed = Image.new("RGB", (image.width, HEIGHT + 22), "white")
    framed.paste(image, (0, 0))
    ImageDraw.Draw(framed).text((4, HEIGHT + 5), label, fill="black")
    return framed


def row(panels: list[Image.Image], path: Path) -> None:
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 6 * (len(panels) - 1), panels[0].height), "white")
    left = 0
    for picture in panels:
        sheet.paste(picture, (left, 0))
        left += picture.width + 6
    sheet.save(path, quality=88)
    print(path)


def render_run(job: str, **overrides):
    name = Path(job).stem + "".join(f"_{v}" for v in overrides.values())
    return blendstyle.run_job(ROOT / "jobs" / job, {"name": name, **overrides}, out_root=OUT)


def render(job: str, **overrides) -> Image.Image:
    return Image.open(render_run(job, **overrides).image_path)


def main(which: list[str]) -> None:
    assets = ROOT / "assets"
    if not which or "colour" in which:
        chelsea = Image.open(assets / "content" / "chelsea.png")
        row(
            [panel(chelsea, "content"), panel(Image.open(assets / "styles" / "the_scream.jpg"), "style")]
            + [panel(render("keep_colour.yaml", preserve_color=mode), f"preserve_color: {mode}") for mode in ("none", "luminance", "histogram")],
            ROOT / "docs" / "colour.jpg",
        )
    if not which or "regions" in which:
        row(
            [
                panel(Image.open(assets / "content" / "rocket.jpg"), "content"),
                panel(Image.open(assets / "masks" / "rocket_sky.png"), "mask of The Starry Night"),
                panel(render("rocket_regions.yaml"), "Starry Night in the mask, The Scream elsewhere"),
            ],
            ROOT / "docs" / "regions.jpg",
        )
    if not which or "scales" in which:
        # The default job's optimizer (500 iterations at most, the default stop rule) at 512 px.
        plain = {"size": 512, "optimizer.iterations": 500}
        one, auto = render_run("starry_cat.yaml", **plain, **{"scales.count": 1}), render_run("starry_cat.yaml", **plain)
        row(
            [panel(Image.open(result.image_path), f"{label}: {result.record['timings']['total']:.0f} s")
             for result, label in ((one, "one scale (scales.count: 1)"), (auto, "the default (auto): 256 -> 512 px"))],
            ROOT / "docs" / "scales.jpg",
        )
    if not which or "sweep" in which:
        result = blendstyle.run_job(ROOT / "jobs" / "blend_sweep.yaml", out_root=OUT)
        grid_image = Image.open(result.folder / "blend_sweep_sweep.png").convert("RGB")
        grid_image.save(ROOT / "docs" / "sweep.jpg", quality=88)
        print(ROOT / "docs" / "sweep.jpg")
    if not which or "tiles" in which:
        result = blendstyle.run_job(ROOT / "jobs" / "large_print.yaml", out_root=OUT)
        tiled = Image.open(result.image_path)
        marked = tiled.copy()
        draw = ImageDraw.Draw(marked)
        from blendstyle.nst.tiles import grid

        for tile in grid(tiled.height, tiled.width, 256, 64):
            box = (tile.columns.start, tile.rows.start, tile.columns.stop - 1, tile.rows.stop - 1)
            draw.rectangle(box, outline=(255, 255, 255))
        row([panel(marked, "the six 256 px tiles"), panel(tiled, "the print (tile borders unmarked)")], ROOT / "docs" / "tiles.jpg")


if __name__ == "__main__":
    main(sys.argv[1:])
