"""Scaling studies: a study file -> planned runs -> run store -> fits -> report."""

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
