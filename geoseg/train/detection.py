"""Training ``architecture: maskrcnn`` in the same loop as every model: its loss.

The model's training forward returns its pyramid and semantic logits
(:class:`geoseg.model.maskrcnn.Features`); :class:`DetectionLoss` derives the objects from the
batch's class labels (the connected components of each thing class, 4-connected, as
``geoseg instances`` numbers a map's; components under ``min_pixels`` are no object: half of
Dubai's Building components are 1-4 px colour-fringe specks) and adds the detector's losses
to the classes' loss on the semantic logits. Instance labels beyond the class labels (one
polygon per object, an id raster) are not read by this route: the bundle says so.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from geoseg.core.instances import structure
from geoseg.train.labels import IGNORE

MIN_OBJECT_PIXELS = 20


def instance_targets(
    y: torch.Tensor, things: list[int], min_pixels: int = MIN_OBJECT_PIXELS
) -> list[dict]:
    """Per image of ``y`` (N x H x W class indices): boxes (x0, y0, x1, y1, pixel edges),
    labels (1 + the thing's position in ``things``) and masks of its objects."""
    out = []
    ys = y.cpu().numpy()
    for img in ys:
        boxes, labels, masks = [], [], []
        for pos, t in enumerate(things):
            lab, n = ndimage.label(img == t, structure=structure(4))
            if not n:
                continue
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            for k, sl in enumerate(ndimage.find_objects(lab), start=1):
                if sl is None or sizes[k] < min_pixels:
                    continue
                boxes.append([sl[1].start, sl[0].start, sl[1].stop, sl[0].stop])
                labels.append(pos + 1)
                masks.append(lab == k)
        h, w = img.shape
        out.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "masks": torch.from_numpy(np.array(masks, dtype=np.uint8).reshape(-1, h, w)),
            }
        )
    return [{k: v.to(y.device) for k, v in t.items()} for t in out]


class DetectionLoss(nn.Module):
    """The classes' loss on the semantic logits plus the detector's losses; :attr:`classes`
    is the classes' part alone (validation reads the rendered classes with it)."""

    def __init__(self, classes_loss: nn.Module, model: nn.Module, things: list[int]):
        super().__init__()
        self.classes, self.things = classes_loss, things
        self._model = (model,)  # held, not registered: the loss owns no weights

    def forward(self, out, y: torch.Tensor) -> torch.Tensor:
        total = self.classes(out.sem, y)
        if (y != IGNORE).any():
            losses = self._model[0].losses(out, instance_targets(y.long(), self.things))
            total = total + sum(losses.values())
        return total
