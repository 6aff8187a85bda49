"""The stylizer of one scale, on the job's shared network (pipeline/stylizer.py)."""

import torch


def test_fp16_gradients_keep_their_direction_with_loss_scaling(tmp_path):
    """With small loss weights the fp16 network's style gradients fall below fp16's range: unscaled, the
    image gradient is noise; scaled, it points where fp32's does."""
    from blendstyle.config.load import load_job
    from blendstyle.files.images import read_image
    from blendstyle.nst.optimize import LossScale
    from blendstyle.pipeline.styles import stylizer_for

    from ..conftest import ASSETS

    def gradient(precision, scaled):
        job = load_job(TINY, {"precision": precision}).job
        content = read_image(job.content, 96)
        objective = stylizer_for(job, torch.device("cpu"), 96).objective(content)
        x = (0.7 * content + 0.3 * torch.rand(content.shape, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
        return LossScale(scaled).gradient(sum(objective(x).values()), x).flatten()

    TINY = tmp_path / "fp16.yaml"
    TINY.write_text(
        f"content: {ASSETS / 'content/chelsea.png'}\nstyles: [{{path: {ASSETS / 'styles/starry_night.jpg'}}}]\n"
        "weights: {content: 0.01, style: 0.1, tv: 0.02}\n"
    )
    reference = gradient("fp32", False)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(reference, gradient("fp16", True), dim=0) > 0.99
    assert cosine(reference, gradient("fp16", False), dim=0) < 0.9  # what the scaling prevents
