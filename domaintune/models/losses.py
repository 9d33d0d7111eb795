"""Pair losses, sentence-transformers style: one small class per loss, one registry.

A loss maps a batch of embeddings ``a``, ``b`` (and optional hard negatives)
with target scores on the angular scale to a scalar, and declares what a
search needs to know about it:

- its float **settings**: dataclass fields made with :meth:`Setting.field`,
  whose default, bounds and help become the search space's parameters (a
  setting several losses share, such as ``scale``, is one parameter);
- ``in_batch``: the other pairs of a batch are its negatives, so its batches
  never hold a text twice (it would be its own negative) and the pairs' hard
  negatives are fed;
- ``positives_only``: it trains only on pairs scored at least its
  ``positive_threshold`` (the others are dropped from its batches).

Adding a loss is one class and one registration, e.g.::

    @register_loss
    @dataclass(frozen=True)
    class CosineMSE(PairLoss):
        '''MSE of ``(1 + cos) / 2`` against the target.'''

        name = "cosine_mse"
        weight: float = Setting(1.0, "Weight of the error.", minimum=0).field()

        def __call__(self, a, b, target, hard_negatives=None):
            return self.weight * tf.reduce_mean(tf.square((1 + pair_cosine(a, b)) / 2 - target))

after which ``--hp loss=cosine_mse --hp weight=0.5:2`` searches it.

TensorFlow is imported when a loss is computed, not when this module is
imported: the search space reads the declarations before TF loads.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from domaintune import tf_runtime
from domaintune.data.retrieval_sets import SAME_CONCEPT_SCORE

_SETTING = "domaintune.setting"  # dataclass field metadata key


def _tf():
    return tf_runtime.load().tf


@dataclasses.dataclass(frozen=True)
class Setting:
    """A float setting of a loss, as the search space declares it.

    ``low``/``high`` make it searched over that range by default (else it is
    fixed at ``default``); ``minimum``/``maximum`` bound what ``--hp``
    accepts. A setting that ``shapes_graph`` is baked into the traced train
    step, so a new value rebuilds the model; the others live in TF variables
    that the next trial assigns.
    """

    default: float
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    low: float | None = None
    high: float | None = None
    log: bool = False
    grid_step: float | None = None
    shapes_graph: bool = False

    def field(self) -> Any:
        """A dataclass field holding this setting (its name is the field's)."""
        return dataclasses.field(default=self.default, metadata={_SETTING: self})


# Settings several losses share: one declaration, one search parameter each.
CLIP_EPSILON = Setting(
    1e-5,
    "Cosine is clipped to +-(1 - clip_epsilon) so arccos keeps a finite gradient.",
    minimum=0,
    maximum=1,
    exclusive_minimum=True,
    low=1e-7,
    high=1e-3,
    log=True,
    grid_step=100,
)
SCALE = Setting(
    20.0, "Logit scale of cosent and in-batch negatives.", minimum=0, exclusive_minimum=True
)
POSITIVE_THRESHOLD = Setting(
    SAME_CONCEPT_SCORE,
    "In-batch negatives: pairs scored at least this are positives.",
    minimum=0,
    maximum=1,
)
MIX_WEIGHT = Setting(1.0, "Weight of in-batch negatives in the mixed loss.", minimum=0)


class PairLoss:
    """Base of the losses: subclasses are frozen dataclasses whose fields are
    their :class:`Setting` s, and say what their batches need."""

    name: ClassVar[str]
    in_batch: ClassVar[bool] = False
    positives_only: ClassVar[bool] = False

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """``{name: Setting}`` of this loss, in field order."""
        return {f.name: f.metadata[_SETTING] for f in dataclasses.fields(cls)}

    def __call__(self, a, b, target, hard_negatives=None):
        raise NotImplementedError


LOSSES: dict[str, type[PairLoss]] = {}


def register_loss(cls: type[PairLoss]) -> type[PairLoss]:
    """Class decorator: offer ``cls`` to searches as ``--hp loss=<cls.name>``."""
    if not (
        isinstance(cls, type)
        and issubclass(cls, PairLoss)
        and dataclasses.is_dataclass(cls)
        and isinstance(getattr(cls, "name", None), str)
    ):
        raise TypeError(f"{cls!r}: a loss is a PairLoss dataclass with a string `name`")
    if LOSSES.get(cls.name, cls) is not cls:
        raise ValueError(f"loss {cls.name!r} is already registered ({LOSSES[cls.name]!r})")
    plain = [f.name for f in dataclasses.fields(cls) if _SETTING not in f.metadata]
    if plain:
        raise TypeError(
            f"{cls.__name__}: fields {plain} are not Settings; declare them with "
            "Setting(...).field() so the search space knows them"
        )
    known = loss_settings()
    for name, setting in cls.settings().items():
        if known.get(name, setting) != setting:  # one search parameter per name
            raise ValueError(
                f"{cls.__name__}.{name} differs from the setting {name!r} "
                "other losses declare; reuse that Setting"
            )
    if cls.positives_only and "positive_threshold" not in cls.settings():
        raise TypeError(
            f"{cls.__name__} trains on positives only: it needs a "
            "positive_threshold setting (POSITIVE_THRESHOLD.field())"
        )
    LOSSES[cls.name] = cls
    return cls


def loss_settings() -> dict[str, Setting]:
    """Every registered loss's settings, first declaration first."""
    found: dict[str, Setting] = {}
    for cls in LOSSES.values():
        for name, setting in cls.settings().items():
            found.setdefault(name, setting)
    return found


def loss_class(name: str) -> type[PairLoss]:
    """The registered loss called ``name``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]


def make_loss(name: str, **settings: Any) -> PairLoss:
    """Build the loss ``name`` from a trial's values (the ones it does not declare
    are ignored); settings left out take their declared defaults."""
    cls = loss_class(name)
    return cls(**{k: v for k, v in settings.items() if k in cls.settings()})


def _normalise(x):
    return _tf().math.l2_normalize(x, axis=-1)


def pair_cosine(a, b):
    """Row-wise cosine of two embedding batches."""
    return _tf().reduce_sum(_normalise(a) * _normalise(b), axis=-1)


def clipped_angular_similarity(a, b, clip_epsilon: float):
    """``1 - arccos(cos)/pi`` with cos clipped to +-(1 - clip_epsilon), for training:
    the gradient of arccos is infinite at +-1. (Evaluation's numpy version,
    ``evaluation.similarity.angular_similarity``, clips to +-1 only.)"""
    tf = _tf()
    limit = 1.0 - clip_epsilon
    return 1.0 - tf.acos(tf.clip_by_value(pair_cosine(a, b), -limit, limit)) / math.pi


@register_loss
@dataclasses.dataclass(frozen=True)
class AngularMSE(PairLoss):
    """The tutorial's loss: ``mean((1 - arccos(clip(cos_i)) / pi - y_i) ** 2)``,
    cosine clipped to +-(1 - ``clip_epsilon``). Uses every pair and its graded score.

    Example (orthogonal embeddings have angular similarity 0.5)::

        AngularMSE()(tf.constant([[1.0, 0.0]]), tf.constant([[0.0, 1.0]]), tf.constant([0.5]))
        # -> 0.0
    """

    name = "angular_mse"
    clip_epsilon: float = CLIP_EPSILON.field()

    def __call__(self, a, b, target, hard_negatives=None):
        tf = _tf()
        similarity = clipped_angular_similarity(a, b, self.clip_epsilon)
        return tf.reduce_mean(tf.square(similarity - target))


@register_loss
@dataclasses.dataclass(frozen=True)
class CoSENT(PairLoss):
    """CoSENT pairwise ranking (Su, 2022): over the batch's pairs with ordered
    targets ``y_i > y_j``, ``log(1 + sum exp(scale * (cos_j - cos_i)))``. Only
    the order of the targets matters, so graded scores need no calibration.

    Example (the better-scored pair has the higher cosine: a small loss)::

        CoSENT(scale=2.0)(a, b, tf.constant([0.9, 0.5]))  # cos = [1, 0] -> log(1 + e^-2)
    """

    name = "cosent"
    scale: float = SCALE.field()

    def __call__(self, a, b, target, hard_negatives=None):
        tf = _tf()
        cos = self.scale * pair_cosine(a, b)
        # diff[i, j] = cos_j - cos_i, counted where target_i > target_j.
        diff = cos[None, :] - cos[:, None]
        ordered = tf.cast(target[:, None] > target[None, :], diff.dtype)
        diff = diff - (1.0 - ordered) * 1e12  # mask: exp(-1e12) = 0
        flat = tf.concat([tf.zeros([1], diff.dtype), tf.reshape(diff, [-1])], axis=0)
        return tf.reduce_logsumexp(flat)  # log(1 + sum exp(...))


@register_loss
@dataclasses.dataclass(frozen=True)
class InBatchNegatives(PairLoss):
    """Multiple-negatives ranking: each positive pair (``y_i >= positive_threshold``)
    is an anchor ``a_i`` whose candidates are every positive pair's ``b_j`` plus
    the batch's hard negatives ``h_k``; cross-entropy with ``scale * cos`` as
    logits and ``b_i`` as the answer (``s`` = ``scale``)::

        -mean_i log(exp(s cos(a_i, b_i))
                    / (sum_j exp(s cos(a_i, b_j)) + sum_k exp(s cos(a_i, h_k))))

    Example (two positives, each other's negative)::

        InBatchNegatives(scale=2.0)(a, b, tf.constant([1.0, 1.0]))
    """

    name = "in_batch_negatives"
    in_batch = True
    positives_only = True
    scale: float = SCALE.field()
    positive_threshold: float = POSITIVE_THRESHOLD.field()

    def __call__(self, a, b, target, hard_negatives=None):
        tf = _tf()
        positive = target >= self.positive_threshold
        anchors = _normalise(tf.boolean_mask(a, positive))
        candidates = _normalise(tf.boolean_mask(b, positive))
        if hard_negatives is not None:  # extra candidates, one per row that has one
            candidates = tf.concat([candidates, _normalise(hard_negatives)], axis=0)
        return _ranking_loss(anchors, candidates, self.scale)


def _ranking_loss(anchors, candidates, scale):
    """Mean cross-entropy of ``scale * cos`` logits, row ``i``'s answer being
    candidate ``i``."""
    tf = _tf()
    logits = scale * tf.matmul(anchors, candidates, transpose_b=True)
    # Cross-entropy written out so that a batch without positives (0 x 0
    # logits) is valid.
    losses = tf.reduce_logsumexp(logits, axis=1) - tf.linalg.diag_part(logits)
    # A batch without positives contributes nothing (not NaN).
    return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(tf.size(losses), losses.dtype))


@register_loss
@dataclasses.dataclass(frozen=True)
class InBatchNegativesSymmetric(PairLoss):
    """Symmetric multiple-negatives ranking (sentence-transformers'
    ``MultipleNegativesSymmetricRankingLoss``): the mean of ``in_batch_negatives``
    (each positive pair's query ``a_i`` must pick its target ``b_i`` among the
    positives' targets and the hard negatives ``h_k``) and the reverse
    direction (each target ``b_i`` must pick ``a_i`` among the positives'
    queries; hard negatives are candidates for queries only)::

        L_qt = -mean_i log(exp(s cos(a_i, b_i))
                           / (sum_j exp(s cos(a_i, b_j)) + sum_k exp(s cos(a_i, h_k))))
        L_tq = -mean_i log(exp(s cos(b_i, a_i)) / sum_j exp(s cos(b_i, a_j)))
        loss = (L_qt + L_tq) / 2

    The reverse term also pulls apart the queries of different targets, so
    a target's embedding singles out its own queries.

    Example (two positives; with cos(a_0, b_1) != cos(a_1, b_0) the two
    directions differ)::

        InBatchNegativesSymmetric(scale=2.0)(a, b, tf.constant([1.0, 1.0]))
    """

    name = "in_batch_negatives_symmetric"
    in_batch = True
    positives_only = True
    scale: float = SCALE.field()
    positive_threshold: float = POSITIVE_THRESHOLD.field()

    def __call__(self, a, b, target, hard_negatives=None):
        tf = _tf()
        forward = InBatchNegatives(self.scale, self.positive_threshold)(
            a, b, target, hard_negatives
        )
        positive = target >= self.positive_threshold
        queries = _normalise(tf.boolean_mask(a, positive))
        targets = _normalise(tf.boolean_mask(b, positive))
        return (forward + _ranking_loss(targets, queries, self.scale)) / 2.0


@register_loss
@dataclasses.dataclass(frozen=True)
class Mixed(PairLoss):
    """``angular_mse + mix_weight * in_batch_negatives``: calibrated scores from
    every pair, ranking from the positives (so it trains on all pairs).

    Example::

        Mixed(mix_weight=0.05)(a, b, target, hard_negatives)
    """

    name = "mixed"
    in_batch = True
    clip_epsilon: float = CLIP_EPSILON.field()
    scale: float = SCALE.field()
    positive_threshold: float = POSITIVE_THRESHOLD.field()
    mix_weight: float = MIX_WEIGHT.field()

    def __call__(self, a, b, target, hard_negatives=None):
        mse = AngularMSE(self.clip_epsilon)(a, b, target)
        ibn = InBatchNegatives(self.scale, self.positive_threshold)(a, b, target, hard_negatives)
        return mse + self.mix_weight * ibn


DEFAULT_LOSS = AngularMSE.name
