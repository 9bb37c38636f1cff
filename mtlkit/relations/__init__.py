"""Task relationship learning (survey §4): which tasks help each other, and which should share a network.

Affinity, four ways (each returns an :class:`Affinity` with its cost):

* :mod:`~mtlkit.relations.standley`: train singles and pairs, gains, higher-order estimates (Standley et al. 2020);
* :mod:`~mtlkit.relations.tag`: lookahead affinity during one joint run (TAG, Fifty et al. 2021);
* :mod:`~mtlkit.relations.gradient`: cosine of task gradients during one joint run;
* :mod:`~mtlkit.relations.taskonomy`: transfer matrix of frozen encoders (Zamir et al. 2018);
* :mod:`~mtlkit.relations.task2vec`: Fisher embeddings of a fixed probe (Achille et al. 2019).

Grouping under a budget of k networks: :mod:`~mtlkit.relations.grouping` (exhaustive,
branch-and-bound, greedy); the chosen groups train as a
:class:`mtlkit.models.branched.BranchedNetwork` (:mod:`~mtlkit.relations.networks`).
"""
from .base import Affinity, AveragedAffinity, fit_readout
from .gradient import GradientCosineAffinity, gradient_cosine
from .grouping import (BudgetError, Grouping, affinity_values, branch_and_bound, exhaustive_search, greedy_search,
                       select_groups)
from .networks import GroupingFit, fit_grouping, one_per_task
from .standley import GroupRuns, group_fitter, groups_up_to, train_groups, trainings_needed
from .tag import TAGAffinity, lookahead_affinity
from .task2vec import random_probe, task2vec_affinity, task2vec_distance, task_embeddings
from .taskonomy import TransferMatrix, transfer_matrix

__all__ = ["Affinity", "AveragedAffinity", "BudgetError", "GradientCosineAffinity", "GroupRuns", "Grouping",
           "GroupingFit", "TAGAffinity", "TransferMatrix", "affinity_values", "branch_and_bound", "exhaustive_search",
           "fit_grouping", "fit_readout", "gradient_cosine", "greedy_search", "group_fitter", "groups_up_to",
           "lookahead_affinity", "one_per_task", "random_probe", "select_groups", "task2vec_affinity",
           "task2vec_distance", "task_embeddings", "train_groups", "trainings_needed",
           "transfer_matrix"]
