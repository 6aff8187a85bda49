"""The study's cells: which variant of the job each reconstruction renders."""

import blendstyle
from blendstyle.pipeline.study import cells


def test_a_style_study_keeps_the_job_s_style_layer_weights(tiny_job):
    """Each column rebuilds the style from the job's first style layers with the weights the job gives them
    (relu2_1 three times relu1_1 here), and a layer the job weighs 0 is no column's: the last column is
    the job's own style representation. (The columns weighed every layer 1, so a job's weights changed
    nothing in its study.)"""
    job = blendstyle.load_job(tiny_job("layers: {style: {relu3_1: 0, relu2_1: 3, relu1_1: 1}}\n")).job
    [(_, row)] = cells(job, "style")
    assert [caption for caption, _ in row] == ["relu1_1", "relu1_1..relu2_1"]
    assert [variant.layers.style for _, variant in row] == [{"relu1_1": 1.0}, {"relu1_1": 1.0, "relu2_1": 3.0}]
