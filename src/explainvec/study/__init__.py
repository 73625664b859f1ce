"""Transfer studies: recipes for τ compared paired, over several bases and target seeds, with intervals."""

from explainvec.evaluation.paired import Interval, cluster_interval
from explainvec.study.config import Distance, Study, Variant
from explainvec.study.figures import study_figures
from explainvec.study.run import run_study
from explainvec.study.table import study_table

__all__ = [
    "Distance",
    "Interval",
    "Study",
    "Variant",
    "cluster_interval",
    "run_study",
    "study_figures",
    "study_table",
]
