"""The Python API of featx: one typed job per stage and the function that runs it.

>>> from featx.jobs import ExtractJob, ProbeJob, run_extract, run_probes
>>> store = run_extract(ExtractJob(dataset="csv", root="labels.csv", backbone="dinov2_vits14", cache="cache")).path  # doctest: +SKIP
>>> run = run_probes(ProbeJob(stores=[store], settings=["knn", "linear"], out="results.jsonl"))  # doctest: +SKIP
>>> run.records, run.outcomes, run.problems  # doctest: +SKIP

`featx extract|probe|finetune` flags, a study YAML (:func:`load_study`) and the demo build these
same jobs. Each job type lives with its stage (``featx.pipeline.job``, ``featx.probes.job``,
``featx.finetune.job``); this package holds what they share (:mod:`featx.jobs.fields`: options as
data; :mod:`featx.jobs.checks`: checks made before any work) and the study. Names are imported
on first use.
"""

from featx.lazy import lazy_exports

_EXPORTS = {
    "ExtractJob": "featx.pipeline.job",
    "ExtractReport": "featx.pipeline.job",
    "run_extract": "featx.pipeline.job",
    "ProbeJob": "featx.probes.job",
    "ProbeRun": "featx.probes.runner",
    "run_probes": "featx.probes.runner",
    "FinetuneJob": "featx.finetune.job",
    "run_finetune": "featx.finetune.job",
    "JobError": "featx.jobs.fields",
    "Study": "featx.jobs.study",
    "StudyJob": "featx.jobs.study",
    "load_study": "featx.jobs.study",
    "dump_study": "featx.jobs.study",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
