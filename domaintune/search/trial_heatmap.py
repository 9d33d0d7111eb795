"""A trial's similarity heatmap for TensorBoard, drawn off the trial's critical path.

matplotlib takes about 0.35 s to draw the card-size heatmap, as long as a
small trial's training takes. So the embeddings of the titles are taken at
once, from the weights the trial ends with, and a worker thread draws them
while the trial goes on scoring and writing its checkpoint; the trial logs
the picture at its end (:meth:`TrialHeatmap.log`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from domaintune.data.titles import TUTORIAL_TITLES
from domaintune.evaluation.similarity import cosine_similarity_matrix
from domaintune.models.trainable_encoder import TrainableEncoder
from domaintune.reporting.tensorboard_logging import (
    TrialLogger,
    heatmap_png,
    heatmap_title,
    run_name,
)

# One drawer for the process: matplotlib draws one figure at a time.
_DRAWER = ThreadPoolExecutor(1, thread_name_prefix="domaintune-heatmap")


class TrialHeatmap:
    """The heatmap of the encoder's weights now, being drawn for ``trial_id``."""

    def __init__(self, encoder: TrainableEncoder, trial_id: str, case_fold: bool = False):
        titles = list(TUTORIAL_TITLES)
        # Embedded as the trial scores (case folded if it is).
        similarity = cosine_similarity_matrix(encoder.encode_fn(case_fold=case_fold)(titles))
        title = heatmap_title(run_name(trial_id))
        self._png: Future[bytes] = _DRAWER.submit(heatmap_png, titles, similarity, title)

    def log(self, logger: TrialLogger, step: int) -> None:
        """Wait for the drawing and log it at ``step``."""
        logger.log_heatmap_png(self._png.result(), step)
