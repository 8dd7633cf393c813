"""Scaling studies: a study file -> planned runs -> run store -> fits -> report.

The public names import their module on first use: reading a study file or its run
store loads neither torch nor the fitters, only planning and training runs load torch.
"""

from typing import TYPE_CHECKING

from roboscale.lazy import lazy_exports

_SOURCES = {
    "PlannedRun": "roboscale.study.plan",
    "StudyPlan": "roboscale.study.plan",
    "plan_study": "roboscale.study.plan",
    "StudyProgress": "roboscale.study.run",
    "StudyResult": "roboscale.study.run",
    "analyze_study": "roboscale.study.run",
    "ensure_dataset": "roboscale.study.run",
    "prepare_study": "roboscale.study.run",
    "run_study": "roboscale.study.run",
    "EXAMPLE": "roboscale.study.spec",
    "StudySpec": "roboscale.study.spec",
    "load_study": "roboscale.study.spec",
    "study_from_dict": "roboscale.study.spec",
    "RunStore": "roboscale.study.store",
}

__all__ = [
    "EXAMPLE",
    "PlannedRun",
    "RunStore",
    "StudyPlan",
    "StudyProgress",
    "StudyResult",
    "StudySpec",
    "analyze_study",
    "ensure_dataset",
    "load_study",
    "plan_study",
    "prepare_study",
    "run_study",
    "study_from_dict",
]


__getattr__ = lazy_exports(__name__, _SOURCES)


if TYPE_CHECKING:
    from roboscale.study.plan import PlannedRun, StudyPlan, plan_study
    from roboscale.study.run import (
        StudyProgress,
        StudyResult,
        analyze_study,
        ensure_dataset,
        prepare_study,
        run_study,
    )
    from roboscale.study.spec import EXAMPLE, StudySpec, load_study, study_from_dict
    from roboscale.study.store import RunStore
