"""The names of the metrics a search records: the one place they are spelled.

Trials, ``base_metrics.json``, results tables, TensorBoard and the objectives
all key metrics by these names; import them instead of writing the strings.
"""

from __future__ import annotations

#: Prefixes of the scored-pair metrics: a search's validation pairs (the
#: domain), and the pairs of ``domaintune evaluate --pairs``.
VAL = "val"
PAIRS = "pairs"


def pair_metric_names(prefix: str) -> tuple[str, str, str]:
    """The names of a pair set's MSE, Pearson and Spearman: ``<prefix>_mse``, ..."""
    return f"{prefix}_mse", f"{prefix}_pearson", f"{prefix}_spearman"


# Validation pairs: val_mse, val_pearson, val_spearman.
VAL_MSE, VAL_PEARSON, VAL_SPEARMAN = pair_metric_names(VAL)


def recall_at(k: int) -> str:
    """The name of retrieval recall@k: ``retrieval_r<k>``."""
    return f"retrieval_r{k}"


# Retrieval over the validation pairs scored as "same concept": retrieval_r1, retrieval_r5.
RETRIEVAL_R1, RETRIEVAL_R5 = recall_at(1), recall_at(5)
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
# --prune median: the epoch after which the rule stopped the trial (absent: not stopped).
STOPPED_AT_EPOCH = "stopped_at_epoch"
# --interpolate: the weight the objective chose, base + ALPHA * (trained - base).
ALPHA = "alpha"


def objective_at_alpha(alpha: float) -> str:
    """The name of a trial's objective at one interpolation weight: ``objective_alpha_0.5``
    (``repr``: two different weights never share a name)."""
    return f"{OBJECTIVE}_alpha_{float(alpha)!r}"


#: What a trial measures of its encoder, in display order.
ENCODER_METRICS = (
    VAL_MSE,
    VAL_PEARSON,
    VAL_SPEARMAN,
    RETRIEVAL_R1,
    RETRIEVAL_R5,
    RETRIEVAL_MRR,
    STS_PEARSON,
)

#: ``--domain-metric`` choice -> (metric read, higher is better).
DOMAIN_METRICS = {
    "mse": (VAL_MSE, False),
    "spearman": (VAL_SPEARMAN, True),
    "retrieval": (RETRIEVAL_R1, True),
}
#: The domain metric of a search that names none (also of searches made before the option).
DEFAULT_DOMAIN_METRIC = "mse"
