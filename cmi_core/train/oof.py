"""Out-of-fold predictions: a fold's validation probabilities and their rows in
``oof_predictions.csv``."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader

from cmi_core.data.schema import GESTURES
from cmi_core.data.sequences import SequenceSet
from cmi_core.rundir.layout import oof_schema
from cmi_core.train.model import CMIModel


@torch.no_grad()
def predict_probs(
    model: CMIModel, loader: DataLoader, device: torch.device | str = "cpu"
) -> np.ndarray:
    """18-class probabilities in loader order, in eval mode and full precision."""
    model.to(device).eval()
    chunks = [
        model.predict_step({k: v.to(device) for k, v in batch.items()}, i).float().cpu()
        for i, batch in enumerate(loader)
    ]
    return torch.cat(chunks).numpy()


def oof_frame(data: SequenceSet, val_idx: np.ndarray, k: int, probs: np.ndarray) -> pl.DataFrame:
    """Fold ``k``'s rows: ids, true gesture, predicted gesture, one probability per gesture."""
    names = np.array(GESTURES, dtype=object)
    columns = {
        "sequence_id": data.sequence_ids[val_idx],
        "subject": data.subjects[val_idx],
        "fold": np.full(len(val_idx), k, dtype=np.int64),
        "gesture": names[data.labels[val_idx]],
        "prediction": names[probs.argmax(axis=1)],
    }
    frame = pl.DataFrame({key: list(value) for key, value in columns.items()})
    probabilities = pl.DataFrame(probs.astype(np.float32), schema=list(GESTURES))
    return pl.concat([frame, probabilities], how="horizontal").cast(oof_schema())
