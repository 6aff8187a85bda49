"""A key that the job's other settings turn off is refused at its place, the same key is taken where
they turn it on, and a base file's shared settings are not refused."""

import pytest

from blendstyle.config.load import load_job
from blendstyle.errors import BlendstyleError

from ..conftest import moving_gif, saved_network

#: (the other settings, the key with a value other than its default, its refusal, the other settings that
#: turn the key on).
CASES = [
    ("animation: {mode: independent, ", "iterations: 5}", "animation.iterations: a setting of mode: coherent",
     "animation: {mode: coherent, "),
    ("animation: {mode: independent, ", "temporal_weight: 5}", "animation.temporal_weight: a setting of mode: coherent",
     "animation: {mode: coherent, "),
    ("animation: {mode: independent, ", "flow: none}", "animation.flow: a setting of mode: coherent",
     "animation: {mode: coherent, "),
    ("animation: {mode: coherent, ", "batch: 2}", "animation.batch: a setting of mode: independent",
     "animation: {mode: independent, "),
    ("animation: {close_loop: false, ", "loop_frames: 2}", "animation.loop_frames: how many frames the loop-closing",
     "animation: {close_loop: true, "),
    ("animation: {formats: [gif], ", "crf: 20}", "animation.crf: the quality of mp4 and webm files; this job writes gif",
     "animation: {formats: [gif, webm], "),
    ("animation: {formats: [webp], ", "dither: true}", "animation.dither: a setting of the GIF's palette; this job writes webp",
     "animation: {formats: [webp, gif], "),
    ("animation: {formats: [mp4], ", "steady: 0}", "animation.steady: a setting of the GIF's palette; this job writes mp4",
     "animation: {formats: [gif], "),
    ("optimizer: {name: adam, ", "history: 5}", "optimizer.history: L-BFGS's memory of past steps; adam keeps none",
     "optimizer: {name: lbfgs, "),
    ("optimizer: {stop: {tolerance: 0, ", "window: 5}}", "optimizer.stop.window: the iterations the stop rule looks back",
     "optimizer: {stop: {tolerance: 0.01, "),
    ("optimizer: {iterations: 40, stop: {", "tolerance: 0.01}}", "optimizer.stop.tolerance: the stop rule compares the "
     "last 50 iterations with those before them, and no optimisation of this job runs more than 40",
     "optimizer: {iterations: 60, stop: {"),
    ("init: {source: noise, ", "noise: 0.5}", "init.noise: the share of noise blended into the start image",
     "init: {source: content, "),
    ("scales: {count: 1, ", "factor: 3}", "scales.factor: a setting of the smaller scales; scales.count is 1",
     "scales: {count: 2, "),
    ("tiles: {mode: never, ", "overlap: 32}", "tiles.overlap: a setting of the tiles; tiles.mode is never",
     "tiles: {mode: auto, "),
]


def clip_job(tiny_job, tmp_path, extra: str, still: bool = False, size: str = "48"):
    moving_gif(tmp_path / "clip.gif")
    content = "content.png" if still else "clip.gif"
    return tiny_job(body=f"content: {content}\nstyles: [{{path: style_a.png}}]\nsize: {size}\n{extra}\n")


@pytest.mark.parametrize("off, key, refusal, on", CASES, ids=[case[1].split(":")[0] for case in CASES])
def test_a_key_turned_off_is_refused_at_its_place_and_taken_where_turned_on(tiny_job, tmp_path, off, key, refusal, on):
    still = off.startswith("tiles")  # on a still: the tiles' keys are refused on any animation
    with pytest.raises(BlendstyleError) as info:
        load_job(clip_job(tiny_job, tmp_path, off + key, still))
    [problem] = info.value.problems
    assert refusal in f"{problem.key}: {problem.message}"
    if "\n" not in key:
        assert (problem.location.line, problem.location.column) == (4, len(off) + key.index(" ") + 2)  # its value
    load_job(clip_job(tiny_job, tmp_path, on + key, still))  # turned on: taken


def test_a_scale_of_one_still_reads_factor_when_the_last_scale_may_tile(tiny_job, tmp_path):
    """One scale, tiled: the tiles refine one whole pass at size / factor, so factor and iterations are read."""
    job = load_job(clip_job(tiny_job, tmp_path, "scales: {count: 1, factor: 3, iterations: 4}", still=True)).job
    assert job.scales.factor == 3
    with pytest.raises(BlendstyleError, match="scales.factor: a setting of the smaller scales"):
        load_job(clip_job(tiny_job, tmp_path, "tiles: {mode: never}\nscales: {count: 1, factor: 3}", still=True))


def test_the_tiles_shape_is_refused_on_an_animation(tiny_job, tmp_path):
    with pytest.raises(BlendstyleError, match="tiles.size: a setting of the tiles; animation frames render whole"):
        load_job(clip_job(tiny_job, tmp_path, "tiles: {size: 256}"))


def test_the_default_value_is_not_refused(tiny_job, tmp_path):
    """Only a value that differs from the default is one the user expects to act."""
    job = load_job(clip_job(tiny_job, tmp_path, "optimizer: {name: adam, history: 20}")).job
    assert job.optimizer.name == "adam"


def test_a_video_writes_mp4_by_default_so_its_crf_is_read(tiny_job, tmp_path):
    from ..conftest import make_video

    make_video(tmp_path / "clip.mp4")
    job = tiny_job(body="content: clip.mp4\nstyles: [{path: style_a.png}]\nsize: 48\nanimation: {crf: 23}\n")
    assert load_job(job).job.animation.crf == 23
    with pytest.raises(BlendstyleError, match="animation.crf: the quality of mp4 and webm files; this job writes gif"):
        load_job(clip_job(tiny_job, tmp_path, "animation: {crf: 23}"))  # a GIF's default output is a GIF


def test_a_setting_turned_off_by_a_base_file_is_not_refused(tiny_job, tmp_path):
    """A base holds settings shared by jobs that write different files: its crf does not stop a GIF job."""
    moving_gif(tmp_path / "clip.gif")
    (tmp_path / "base.yaml").write_text("animation: {crf: 23, formats: [gif]}\noptimizer: {history: 8}\n")
    job = tiny_job(body="extends: base.yaml\ncontent: clip.gif\nstyles: [{path: style_a.png}]\nsize: 48\n"
                   "optimizer: {name: adam}\n")
    assert load_job(job).job.animation.crf == 23
    with pytest.raises(BlendstyleError, match="animation.crf"):
        load_job(job, {"animation.crf": "20"})  # given for this job: refused


def test_a_still_with_animation_settings_is_told_once(tiny_job):
    """The whole section is refused on a still; its keys are not refused again one by one."""
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("animation: {mode: independent, iterations: 5, crf: 20}\n"))
    assert [problem.key for problem in info.value.problems] == ["animation"]


def test_a_switch_given_on_the_command_line_leaves_the_files_keys_alone(tiny_job):
    """``--set tiles.mode=never`` tries the job whole: the file's tile settings stay for when the override
    goes. A turned-off key given on the command line itself is refused."""
    job = tiny_job("tiles: {size: 256}\n")
    assert load_job(job, {"tiles.mode": "never"}).job.tiles.size == 256
    with pytest.raises(BlendstyleError, match="tiles.overlap: a setting of the tiles; tiles.mode is never"):
        load_job(tiny_job("tiles: {mode: never}\n"), {"tiles.overlap": 32})


def test_a_video_has_no_loop_to_close(tiny_job, tmp_path):
    from ..conftest import make_video

    make_video(tmp_path / "clip.mp4")
    job = tiny_job(body="content: clip.mp4\nstyles: [{path: style_a.png}]\nsize: 48\nanimation: {loop_frames: 2}\n")
    with pytest.raises(BlendstyleError, match="animation.loop_frames: a video plays once: it has no loop to close"):
        load_job(job)


@pytest.mark.parametrize("extra, refusal", [
    ("output: {format: webp, dpi: 300}\n", "output: dpi is stored in png, jpg and tiff files; a webp file has no resolution"),
    ("method: network\nnetwork: {weights: saved.pt, checkpoint_every: 5}\n",
     "network: a saved network is applied as it is, without training: checkpoint_every cannot be set"),
])
def test_a_setting_its_own_section_turns_off_is_refused(tiny_job, tmp_path, extra, refusal):
    saved_network(tmp_path / "saved.pt")
    with pytest.raises(BlendstyleError, match=refusal):
        load_job(tiny_job(extra))


def test_a_print_size_on_an_animation_is_not_taken_for_a_written_dpi(tiny_job, tmp_path):
    """A size in print units gives the file's resolution without output.dpi being written: not refused."""
    job = load_job(clip_job(tiny_job, tmp_path, "", size="{long_side: 2cm, dpi: 300}")).job
    assert job.output.dpi == 300
    with pytest.raises(BlendstyleError, match="output.dpi: the resolution stored in stills and sweep cells"):
        load_job(clip_job(tiny_job, tmp_path, "output: {dpi: 300}"))


def test_two_sweeps_of_one_style_are_refused(tiny_job):
    """Each cell sets the swept style's weight, so the second sweep would overwrite the first."""
    job = tiny_job(body="content: content.png\nstyles: [{path: style_a.png}, {path: style_b.png}]\nsize: 48\n"
                   "sweep: [{style: 1, steps: 2}, {style: 1, steps: 3}]\n")
    with pytest.raises(BlendstyleError, match="both sweeps vary style 1; a grid sweeps two different styles"):
        load_job(job)


def test_a_clip_without_a_loop_has_no_loop_to_close(tiny_job, tmp_path):
    """A GIF without a loop count plays once, and a loop of two frames has no seam the pass would close: the
    loop-closing keys are refused there, as on a video; a looping clip of three frames takes them."""
    from PIL import Image

    frames = [Image.new("RGB", (48, 36), (40 * k, 90, 160)) for k in range(3)]
    frames[0].save(tmp_path / "once.gif", save_all=True, append_images=frames[1:], duration=100)  # no loop block
    once = tiny_job(body="content: once.gif\nstyles: [{path: style_a.png}]\nsize: 48\nanimation: {loop_frames: 2}\n")
    with pytest.raises(BlendstyleError, match=r"animation.loop_frames: \S*once.gif plays once .it has no loop count."):
        load_job(once)
    with pytest.raises(BlendstyleError, match="animation.loop_frames: 2 selected frames: a loop needs at least 3"):
        load_job(clip_job(tiny_job, tmp_path, "animation: {stop: 2, loop_frames: 2}"))
    assert load_job(clip_job(tiny_job, tmp_path, "animation: {stop: 3, loop_frames: 2}")).job.animation.loop_frames == 2


def test_a_stop_rule_cut_short_on_the_command_line_is_not_refused(tiny_job, tmp_path):
    """``watch`` and ``--set optimizer.iterations=...`` shorten a run whose file sets a stop rule: the file's
    rule is left alone, not refused."""
    path = clip_job(tiny_job, tmp_path, "optimizer: {iterations: 200, stop: {tolerance: 0.01}}")
    assert load_job(path, {"optimizer.iterations": 10}).job.optimizer.iterations == 10


def test_every_iteration_setting_on_the_command_line_leaves_the_stop_rule_alone(tiny_job, tmp_path):
    """The longest run is the longest of every iteration setting; shortening any of them from the command
    line leaves the file's rule alone."""
    path = clip_job(tiny_job, tmp_path, "optimizer: {iterations: 40, stop: {tolerance: 0.01, window: 100}}\n"
                    "scales: {count: 2, iterations: 200}", still=True)
    assert load_job(path).job.scales.iterations == 200  # a coarse scale runs longer than the window
    assert load_job(path, {"scales.iterations": 50}).job.scales.iterations == 50


def test_under_method_network_the_stop_rule_is_measured_against_the_refining_runs(tiny_job, tmp_path):
    with pytest.raises(BlendstyleError, match="no optimisation of this job runs more than 20"):
        load_job(clip_job(tiny_job, tmp_path, "method: network\nnetwork: {refine: 20}\n"
                          "optimizer: {stop: {tolerance: 0.01, window: 30}}", still=True))
    job = load_job(clip_job(tiny_job, tmp_path, "method: network\nnetwork: {refine: 40}\n"
                            "optimizer: {stop: {tolerance: 0.01, window: 30}}", still=True)).job
    assert job.network.refine == 40


def test_close_loop_written_out_is_refused_where_there_is_no_loop_even_at_its_default(tiny_job, tmp_path):
    moving_gif(tmp_path / "two.gif", count=2)
    body = "extends: quick.yaml\ncontent: two.gif\nstyles: [{path: style_a.png}]\nsize: 48\n"
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("animation: {close_loop: true}\n", body=body))
    [problem] = info.value.problems
    assert problem.key == "animation.close_loop" and "a loop needs at least 3" in problem.message
    load_job(tiny_job("", body=body))  # not written: nothing to refuse
