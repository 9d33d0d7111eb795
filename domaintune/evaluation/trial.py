"""What a search measures of each trial's encoder (and of the untuned base)."""

from __future__ import annotations

import math

from domaintune.evaluation import names
from domaintune.evaluation.metrics import pair_metrics, sts_metrics
from domaintune.evaluation.retrieval import retrieval_metrics
from domaintune.models.encoding import EncodeFn

_RETRIEVAL = (names.RETRIEVAL_R1, names.RETRIEVAL_R5, names.RETRIEVAL_MRR)


def encoder_metrics(encode: EncodeFn, val, sts=None, retrieval=None) -> dict[str, float | None]:
    """Validation-pair MSE and correlations, retrieval and STS-B Pearson.

    Args:
        encode: Texts -> embeddings.
        val: The validation ``PairSet``.
        sts: ``StsPairs``, or None for a domain-only search (``sts_pearson``
            is then None).
        retrieval: The ``RetrievalSet`` of the validation pairs, or None (the
            retrieval metrics are then absent).

    Returns:
        The :data:`names.ENCODER_METRICS` measured; a value that is not finite
        (a correlation of constant scores) is None.
    """
    domain = pair_metrics(encode, val, prefix=names.VAL)
    metrics: dict[str, float | None] = {
        **{k: domain[k] for k in names.pair_metric_names(names.VAL)},
        names.STS_PEARSON: None,
    }
    if retrieval is not None:
        found = retrieval_metrics(encode, retrieval)
        metrics.update({k: found[k] for k in _RETRIEVAL})
    if sts is not None:
        metrics[names.STS_PEARSON] = sts_metrics(encode, sts)[names.STS_PEARSON]
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in metrics.items()}
