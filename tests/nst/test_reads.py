import torch

from blendstyle.nst.reads import Reads


def test_a_slot_keeps_its_copy_when_the_step_overwrites_its_outputs():
    """A replayed CUDA graph writes every step's terms into the same tensor: the slot read a step late must
    hold the values of its own step, not the next one's."""
    reads = Reads(lag=1, images=True)
    values, image = torch.tensor([1.0, 2.0]), torch.zeros(1, 3, 2, 2)
    reads.queue(1, values, image)
    assert reads.due() is None  # one queued, read one late: not yet
    values.add_(10)  # the next step, in place
    image.add_(1)
    reads.queue(2, values, image)
    first = reads.due()
    assert first.iteration == 1 and first.values.tolist() == [1.0, 2.0] and float(first.image.max()) == 0
    assert reads.due() is None
    last = reads.next()
    assert last.iteration == 2 and last.values.tolist() == [11.0, 12.0] and float(last.image.min()) == 1
    assert reads.next() is None


def test_the_slots_are_reused_in_turn():
    reads = Reads(lag=1, images=False)
    seen = []
    for iteration in range(1, 6):
        reads.queue(iteration, torch.tensor([float(iteration)]), torch.zeros(1))
        if (slot := reads.due()) is not None:
            seen.append((slot.iteration, slot.values.item(), slot.image))
    assert seen == [(1, 1.0, None), (2, 2.0, None), (3, 3.0, None), (4, 4.0, None)]
    assert len(reads.slots) == 2


def test_without_lag_nothing_is_copied():
    reads = Reads(lag=0, images=True)
    values, image = torch.tensor([3.0]), torch.ones(1, 3, 2, 2)
    reads.queue(1, values, image)
    slot = reads.due()
    assert slot.values is values and slot.image.data_ptr() == image.data_ptr() and not reads.slots
