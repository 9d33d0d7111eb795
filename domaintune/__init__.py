"""domaintune: domain-adapt TF-Hub sentence encoders by siamese fine-tuning.

The public API is small:

- :func:`domaintune.models.resolve_base` turns a base-model spec (``use-m3``,
  a TF-Hub handle/URL or a local SavedModel directory) into something
  ``hub.KerasLayer`` loads.
- :func:`domaintune.evaluation.evaluate_encoder` scores an encoder on STS-B
  and on domain pairs.
- ``domaintune search`` / ``results`` / ``export`` (see :mod:`domaintune.cli`).
"""

__version__ = "0.1.0"
