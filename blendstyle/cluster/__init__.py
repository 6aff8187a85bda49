"""Scaling out on Ray: a folder of jobs, or one clip's frames, spread over many workers.

The layer above the pipeline and below the command line: it starts or joins Ray (:mod:`.engine`), packs
a job with its input files for workers that share no file system (:mod:`.shipping`), runs jobs and
frames in worker processes (:mod:`.workers`) and brings everything back to the driver, which alone
writes ``outputs/`` (:mod:`.jobs`, :mod:`.frames`). Ray is an optional dependency (the ``cluster``
extra): nothing here imports it until a command asks for workers.
"""
