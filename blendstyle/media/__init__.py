"""What a media file is, at the bottom of the house (no torch, no numpy): the table of formats blendstyle
reads and writes (:mod:`~blendstyle.media.formats`), and what a file holds, read from its header or its
packets (:mod:`~blendstyle.media.probe`), an animation's frames decoded once (:mod:`~blendstyle.media.frames`).

The job schema takes its format names from the table, the readers decide what a content file is from it,
and the writers take their encoder, alpha and sound rules from it: a new container is one new row.
"""
