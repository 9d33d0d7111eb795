"""domaintune: domain-adapt TF-Hub sentence encoders by siamese fine-tuning.

The Python API (the ``domaintune`` command is a thin layer over it)::

    import domaintune as dt

    result = dt.search(train="pairs.csv", sts="auto", max_trials=20,
                       hp={"learning_rate": (1e-5, 1e-4)}, project_dir="runs/titles")
    result.trials, result.best, result.table()
    result.export("titles-encoder")
    dt.load_search("runs/titles")            # a finished or running search
    dt.evaluate("titles-encoder", sts="auto", pairs="holdout.csv")

- :func:`search` runs or resumes a KerasTuner search and returns a
  :class:`SearchResult` (trials as :class:`Trial` records, the best, a table,
  :meth:`SearchResult.export`).
- :func:`load_search` opens a search's project directory.
- :func:`evaluate` scores an encoder on STS-B, domain pairs and retrieval.
- :class:`~domaintune.errors.UserError` is what every fixable mistake raises.

Importing domaintune is cheap: TensorFlow and KerasTuner load inside the calls.
"""

# `domaintune.search` names both a subpackage and the function below. Importing
# the (empty) subpackage first makes the function's binding final: importing a
# submodule later finds the package in sys.modules and leaves this name alone.
import domaintune.search  # noqa: F401  # isort: skip
from domaintune.api import SearchResult, Trial, evaluate, load_search, sample_pairs, search
from domaintune.errors import UserError

__version__ = "0.1.0"

__all__ = [
    "SearchResult",
    "Trial",
    "UserError",
    "__version__",
    "evaluate",
    "load_search",
    "sample_pairs",
    "search",
]
