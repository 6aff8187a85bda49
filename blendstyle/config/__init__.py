"""Job files, without torch: YAML with marks, the job models, ``extends`` layering and overrides,
located problems, and the checks ``validate`` shares with ``run``."""

from .load import LoadedJob, load_job
from .models import Job, job_schema

__all__ = ["Job", "LoadedJob", "job_schema", "load_job"]
