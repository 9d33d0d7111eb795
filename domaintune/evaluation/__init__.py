"""How good an encoder is: STS-B, scored pairs, retrieval, and a search's trial metrics.

Every function takes an ``encode`` callable (texts -> embeddings, see
:mod:`domaintune.models.encoding`); metric names come from
:mod:`domaintune.evaluation.names`, cosine and angular similarity from
:mod:`domaintune.evaluation.similarity`::

    from domaintune.data.sts import load_sts
    from domaintune.evaluation import sts_metrics
    sts_metrics(encode, load_sts("auto"))  # {"sts_pearson": ..., ...}
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> its submodule. Imported on first use: ``names`` is read by
#: light modules (objectives, results) that must not pull in scipy.
_EXPORTS = {
    "angular_similarity": "similarity",
    "cosine_similarity_matrix": "similarity",
    "encoder_metrics": "trial",
    "pair_metrics": "metrics",
    "pair_similarities": "metrics",
    "retrieval_metrics": "retrieval",
    "sts_metrics": "metrics",
}

__all__ = ["names", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
