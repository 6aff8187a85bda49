import math

import pytest
import torch

from blendstyle.nst.optimize import converged, optimize


def quadratic(target):
    def objective(x):
        return {"fit": (x - target).pow(2).sum(), "tv": 0.0 * x.sum()}

    return objective


@pytest.mark.parametrize("method,lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_loss_goes_down(method, lr):
    target = torch.rand(1, 3, 8, 8)
    result = optimize(torch.zeros(1, 3, 8, 8), quadratic(target), method=method, lr=lr, iterations=40)
    totals = [step.total for step in result.history]
    assert totals[-1] < 0.05 * totals[0]
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert set(result.history[0].terms) == {"fit", "tv"}


def test_converged_rule():
    assert not converged([10, 9, 8], 0.005, 5)  # too short to judge
    assert converged([10.0] * 4 + [9.99], 0.005, 3)
    assert not converged([10.0, 9.0, 8.0, 7.0], 0.005, 3)
    assert not converged([10.0] * 10, 0.0, 3)  # tolerance 0 disables the rule


def test_one_uphill_step_does_not_end_a_run_that_is_improving():
    # L-BFGS without a line search is not monotone: the last step went up, but the window's best (7) is
    # well below the best before it (10).
    assert not converged([10, 9, 8, 7, 9.5], 0.005, 3)
    assert converged([10, 9, 8, 7, 7.0, 7.01, 9.5, 7.0], 0.005, 3)  # no progress on the best for 3 steps


def test_stops_early_when_flat():
    target = torch.rand(1, 3, 4, 4)
    result = optimize(target.clone(), quadratic(target), iterations=200, tolerance=0.01, window=5)
    assert result.stopped_early and result.iterations < 20


def test_callback_sees_every_iteration():
    seen = []
    optimize(torch.zeros(1, 3, 4, 4), quadratic(torch.rand(1, 3, 4, 4)), iterations=7, on_step=lambda s, x: seen.append(s.iteration))
    assert seen == list(range(1, 8))


def test_a_non_finite_loss_halts_with_the_reason_and_a_hint():
    def objective(x):
        return {"bad": x.sum() * math.nan}

    result = optimize(torch.zeros(1, 3, 4, 4), objective, iterations=3)
    assert result.halted.reason == "non-finite" and "became nan at iteration 1" in result.halted.message
    assert "adam" in result.halted.hint and result.iterations == 0


def test_returns_best_image_when_the_last_step_went_uphill():
    calls = {"n": 0}
    target = torch.full((1, 3, 4, 4), 0.5)

    def objective(x):
        calls["n"] += 1
        return {"fit": (x - target).pow(2).sum()}

    # A huge Adam step overshoots far past the target; the best image seen is the start.
    result = optimize(torch.full((1, 3, 4, 4), 0.4), objective, method="adam", lr=5.0, iterations=2)
    assert torch.allclose(result.image, torch.full((1, 3, 4, 4), 0.4))


def test_an_interrupt_halts_with_the_best_image_and_the_iterations_done():
    target = torch.rand(1, 3, 8, 8)
    fit, calls = quadratic(target), []

    def objective(x):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return fit(x)

    result = optimize(torch.zeros(1, 3, 8, 8), objective, method="adam", lr=0.05, iterations=40)
    assert result.halted.reason == "interrupted" and result.iterations == 5
    best = result.image
    assert (best - target).pow(2).sum() < target.pow(2).sum()  # moved from the start towards the target
    assert best.min() >= 0 and best.max() <= 1


def test_a_stop_request_is_honoured_after_the_iteration_under_way():
    asked = []
    result = optimize(
        torch.zeros(1, 3, 8, 8), quadratic(torch.rand(1, 3, 8, 8)), iterations=40,
        on_step=lambda step, x: asked.append(step.iteration) if step.iteration == 3 else None,
        should_stop=lambda: bool(asked),
    )
    assert result.halted.reason == "interrupted" and result.iterations == 3


def test_the_final_terms_are_those_of_the_image_handed_back():
    target = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    fit = quadratic(target)
    result = optimize(torch.zeros(1, 3, 6, 6), fit, iterations=5)
    assert result.final == pytest.approx({name: float(value) for name, value in fit(result.image).items()})


def test_iterate_averaging_hands_out_the_moving_average_of_the_images():
    """``average``: the picture is the exponential moving average of the images after each step, from the
    start, computed here independently from the images ``on_step`` sees."""
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 0.8 + 0.1
    start = torch.full((1, 3, 8, 8), 0.5)
    seen = []
    result = optimize(start, quadratic(target), method="adam", lr=0.05, iterations=12, average=0.8,
                      on_step=lambda step, x: seen.append(x.clone()))
    expected = start.clone()
    for image in seen:
        expected = 0.8 * expected + 0.2 * image
    assert torch.allclose(result.image, expected.clamp(0, 1), atol=1e-6)
    assert not torch.allclose(result.image, seen[-1].clamp(0, 1), atol=1e-3)  # not the last image
    assert result.final["fit"] == pytest.approx(float((expected - target).pow(2).sum()), rel=1e-5)


def lagged(lag, **options):
    """A run with the host reading ``lag`` iterations late: its steps, the images ``on_step`` saw, the result."""
    target = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    steps, images = [], []

    def on_step(step, image):
        steps.append(step)
        images.append(image.clone())

    result = optimize(torch.zeros(1, 3, 6, 6), quadratic(target), lag=lag, on_step=on_step, **options)
    return steps, images, result


@pytest.mark.parametrize("method,lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_reading_a_step_late_changes_when_the_host_reads_not_what(method, lr):
    """The CUDA default (read one iteration late, :mod:`blendstyle.nst.reads`) files the same steps and shows
    ``on_step`` the same images as reading at once."""
    now_steps, now_images, now = lagged(0, method=method, lr=lr, iterations=12)
    late_steps, late_images, late = lagged(1, method=method, lr=lr, iterations=12)
    assert [(s.iteration, s.terms) for s in late_steps] == [(s.iteration, s.terms) for s in now_steps]
    assert len(late_images) == 12 and all(torch.equal(a, b) for a, b in zip(late_images, now_images))
    assert torch.equal(late.image, now.image) and late.final == now.final


def test_a_late_read_files_the_step_already_under_way_when_the_run_stops():
    now_steps, _, now = lagged(0, iterations=200, tolerance=0.01, window=5)
    late_steps, _, late = lagged(1, iterations=200, tolerance=0.01, window=5)
    assert now.stopped_early and late.stopped_early
    assert [s.total for s in late_steps[:-1]] == [s.total for s in now_steps] and len(late_steps) == len(now_steps) + 1
    assert late.iterations == len(late_steps)


def test_a_late_read_halts_on_the_first_non_finite_step_and_files_nothing_after_it():
    def objective(x):
        calls.append(1)
        return {"fit": x.sum() * (math.nan if len(calls) >= 5 else 1.0)}

    calls = []
    result = optimize(torch.zeros(1, 3, 4, 4), objective, method="adam", lr=0.1, iterations=10, lag=1)
    assert result.halted.reason == "non-finite" and "at iteration 5" in result.halted.message
    assert result.iterations == 4 and len(calls) == 6  # the sixth ran before the fifth was read


def test_a_stop_request_read_late_files_the_iteration_under_way():
    asked = []
    result = optimize(
        torch.zeros(1, 3, 8, 8), quadratic(torch.rand(1, 3, 8, 8)), iterations=40, lag=1,
        on_step=lambda step, x: asked.append(step.iteration) if step.iteration == 3 else None,
        should_stop=lambda: bool(asked),
    )
    assert result.halted.reason == "interrupted" and result.iterations == 4


def test_a_step_under_way_that_goes_non_finite_after_the_stop_rule_ended_the_run_is_dropped():
    """Read a step late, the stop rule ends a run while the next step is under way; if that step's loss is
    NaN, the run still ended by the rule, with the best image, not as a failure."""
    target = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    calls = []

    def objective(x):
        calls.append(1)
        fit = (x - target).pow(2).sum() * 0 + 1.0  # flat: the rule ends the run at its fourth step
        return {"fit": fit * (math.nan if len(calls) == 5 else 1.0)}

    result = optimize(torch.full((1, 3, 4, 4), 0.5), objective, method="adam", lr=0.1, iterations=20,
                      tolerance=0.01, window=3, lag=1)
    assert result.stopped_early and result.halted is None and result.iterations == 4
    assert torch.isfinite(result.image).all() and result.final == {"fit": 1.0}
