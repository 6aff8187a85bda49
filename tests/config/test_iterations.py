"""``--iterations N`` sets every optimisation of a job, in the job's own proportions, or what a network job
iterates; a job that iterates nothing refuses it."""

import pytest

from blendstyle.config.iterations import iteration_settings, preview_iterations
from blendstyle.config.load import COMMAND_LINE, load_job
from blendstyle.errors import BlendstyleError

from ..conftest import saved_network
from .test_unread import clip_job


def test_the_jobs_own_iteration_settings_are_scaled_with_it(tiny_job, tmp_path):
    from blendstyle.nst.memory import Plan
    from blendstyle.pipeline.schedule import Stage, plan_stages

    path = tiny_job("optimizer: {iterations: 100}\nscales: {iterations: 30}\ntiles: {iterations: 60}\n")
    job = load_job(path, {"size": 1024}, iterations=10).job
    assert (job.optimizer.iterations, job.scales.iterations, job.tiles.iterations) == (10, 3, 6)
    # Every stage of a tiled print is shortened, not only the one optimizer.iterations names.
    assert plan_stages(job, 1024, 683, Plan(True, 1, 1, 2048)) == [Stage(256, 3), Stage(512, 3), Stage(1024, 6, True)]
    # Lengthened alike; what the job leaves unset still follows optimizer.iterations.
    job = load_job(tiny_job("optimizer: {iterations: 10}\ntiles: {iterations: 5}\n"), iterations=40).job
    assert (job.optimizer.iterations, job.scales.iterations, job.tiles.iterations) == (40, None, 20)
    assert iteration_settings(job, 1)["tiles.iterations"] == 1  # never below one


def test_a_coherent_clips_later_frames_follow(tiny_job, tmp_path):
    job = load_job(clip_job(tiny_job, tmp_path, "optimizer: {iterations: 60}\nanimation: {iterations: 30}"),
                   iterations=6).job
    assert (job.optimizer.iterations, job.animation.iterations) == (6, 3)


@pytest.mark.parametrize("first, later", [(500, 60), (1000, 60), (90, 30), (2, 1)])
def test_later_frames_default_to_a_third_of_the_first_at_most_60(tiny_job, tmp_path, first, later):
    """A coherent frame starts from its moved predecessor: 60 iterations gave the same pictures as a third of
    500 (166) on three clips (:data:`~blendstyle.config.animation.LATER_CAP`); set, the count is kept."""
    job = load_job(clip_job(tiny_job, tmp_path, f"optimizer: {{iterations: {first}}}")).job
    assert job.animation.later_iterations(job.optimizer.iterations) == later
    job = load_job(clip_job(tiny_job, tmp_path, f"optimizer: {{iterations: {first}}}\nanimation: {{iterations: 100}}")).job
    assert job.animation.later_iterations(job.optimizer.iterations) == 100


def test_a_network_job_sets_what_it_iterates(tiny_job, tmp_path):
    trained = load_job(tiny_job("method: network\nnetwork: {iterations: 50, refine: 5}\n"), iterations=7).job
    assert (trained.network.iterations, trained.network.refine, trained.optimizer.iterations) == (7, 5, 500)
    saved_network(tmp_path / "saved.network.pt")
    refined = load_job(tiny_job("method: network\nnetwork: {weights: saved.network.pt, refine: 5}\n"), iterations=7).job
    assert refined.network.refine == 7
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("method: network\nnetwork: {weights: saved.network.pt}\n"), iterations=7)
    [problem] = info.value.problems
    assert (problem.location.file, problem.key) == (COMMAND_LINE, "--iterations")
    assert "nothing of it iterates" in problem.message


def test_a_scaled_setting_another_refuses_is_refused_where_the_file_wrote_it(tiny_job):
    path = tiny_job("tiles: {mode: never, iterations: 30}\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(path, iterations=50)
    [problem] = info.value.problems
    assert problem.key == "tiles.iterations" and problem.location.file.endswith("tiny.yaml")
    assert problem.location.line == 6


def test_a_setting_given_on_the_command_line_is_kept_as_given(tiny_job):
    job = load_job(tiny_job("scales: {iterations: 40}\ntiles: {iterations: 300}\n"), {"scales.iterations": 50},
                   iterations=20).job
    assert (job.optimizer.iterations, job.scales.iterations, job.tiles.iterations) == (20, 50, 12)


def test_a_network_job_that_does_not_validate_gets_only_its_own_problems(tiny_job):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("method: network\nweights: {style: bogus}\n"), iterations=5)
    assert [problem.key for problem in info.value.problems] == ["weights.style"]


def test_a_preview_is_never_longer_than_the_job(tiny_job, tmp_path):
    saved_network(tmp_path / "saved.network.pt")
    for extra, expected in [("optimizer: {iterations: 50}\n", 50), ("", 100),
                            ("method: network\nnetwork: {iterations: 600}\n", 100),
                            ("method: network\nnetwork: {weights: saved.network.pt, refine: 5}\n", 5),
                            ("method: network\nnetwork: {weights: saved.network.pt}\n", None)]:
        assert preview_iterations(load_job(tiny_job(extra)).job, 100) == expected, extra


def test_a_stop_rule_longer_than_the_shortened_run_is_not_refused(tiny_job):
    """Shortening a job from the command line leaves its stop rule for the full run."""
    path = tiny_job("optimizer: {iterations: 100, stop: {tolerance: 0.01, window: 20}}\nscales: {iterations: 40}\n")
    assert load_job(path, iterations=10).job.scales.iterations == 4


def test_iterations_and_a_set_of_the_same_key_are_refused_together(tiny_job):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(), {"optimizer.iterations": 10}, iterations=5)
    [problem] = info.value.problems
    assert problem.key == "--iterations" and "sets optimizer.iterations, which --set sets too" in problem.message
