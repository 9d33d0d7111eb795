"""The names of the metrics a search records: the one place they are spelled.

Trials, ``base_metrics.json``, results tables, TensorBoard and the objectives
all key metrics by these names; import them instead of writing the strings.
"""

from __future__ import annotations

# Validation pairs (the domain).
VAL_MSE = "val_mse"
VAL_PEARSON = "val_pearson"
VAL_SPEARMAN = "val_spearman"
# Retrieval over the validation pairs scored as "same concept".
RETRIEVAL_R1 = "retrieval_r1"
RETRIEVAL_R5 = "retrieval_r5"
RETRIEVAL_MRR = "retrieval_mrr"
# STS Benchmark (general language skill).
STS_PEARSON = "sts_pearson"
# What an objective adds (see domaintune.objectives).
OBJECTIVE = "objective"
DOMAIN_TERM = "domain_term"
STS_TERM = "sts_term"
STS_DELTA = "sts_delta"
GUARD_VIOLATED = "guard_violated"
DOMAIN_ONLY = "domain_only"
# Bookkeeping of a trial.
EPOCHS_RUN = "epochs_run"

#: What a trial measures of its encoder, in display order.
ENCODER_METRICS = (VAL_MSE, VAL_PEARSON, VAL_SPEARMAN, RETRIEVAL_R1, RETRIEVAL_R5,
                   RETRIEVAL_MRR, STS_PEARSON)
#: What the objectives derive from them.
OBJECTIVE_METRICS = (OBJECTIVE, DOMAIN_TERM, STS_TERM, STS_DELTA, GUARD_VIOLATED, DOMAIN_ONLY)

#: ``--domain-metric`` choice -> (metric read, higher is better).
DOMAIN_METRICS = {"mse": (VAL_MSE, False), "spearman": (VAL_SPEARMAN, True),
                  "retrieval": (RETRIEVAL_R1, True)}
