"""``architecture: maskrcnn``: torchvision's Mask R-CNN with a semantic branch (Panoptic FPN,
Kirillov et al. 2019) on a timm encoder, rendered per tile into the engine's outputs.

The network finds the thing classes' objects as boxes and masks and the stuff classes as a
per-pixel softmax from the same feature pyramid. In eval mode :class:`PanopticMaskRCNN` turns
each tile's detections into what every other geoseg model outputs, the classes head and the
``boundary`` head, as logits (:mod:`geoseg.model.heads` activates them):

- a thing class's probability is the highest mask probability of its objects kept (score >=
  ``score_threshold``); the likeliest stuff class of the semantic branch gets the rest, the
  others in proportion to it, then all are normalised: a pixel is an object's where its mask
  probability exceeds 0.5, else the semantic branch's stuff (Panoptic FPN's merge, objects
  over stuff);
- the border channel marks the contact between kept objects: each pixel of an object whose
  4-neighbour belongs to another object (objects drawn best score first, each on the pixels
  still free; one lying mostly on drawn pixels is a duplicate and gets none), so touching
  houses are split and isolated ones keep every pixel.

The engine then blends those per-pixel outputs across overlapping tiles like any model's, and
``geoseg instances`` splits and numbers the objects scene-wide with the same seam pass:
objects cut by tile and block edges are whole again (issue 26's Mask R-CNN row). Written by
hand because torchvision has no semantic branch and no such tile rendering; the detector
itself is torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from geoseg.errors import GeoSegError

ANCHORS = ((8,), (16,), (32,), (64,), (128,))  # Dubai's houses: ~5-60 px a side at 512 tiles
DUPLICATE = 0.5  # share of an object's pixels already another's: the same object again
DEFAULTS = {
    "fpn_channels": 96,
    "score_threshold": 0.5,
    "mask_threshold": 0.5,
    "detections": 300,
}


def _encoder(encoder: str, in_channels: int) -> nn.Module:
    """The timm encoder's features at strides 4, 8, 16 and 32."""
    import timm

    try:
        return timm.create_model(
            encoder.removeprefix("tu-"),
            features_only=True,
            out_indices=(1, 2, 3, 4),
            in_chans=in_channels,
        )
    except RuntimeError as e:
        raise GeoSegError(
            f"maskrcnn: cannot build encoder {encoder!r} ({str(e).splitlines()[0][:160]}): "
            "use a timm encoder, e.g. tu-tf_efficientnet_lite0"
        ) from None


class _Backbone(nn.Module):
    """The encoder + torchvision's FPN, with the ``out_channels`` torchvision's detectors
    expect. The encoder is held, not registered: it is the model's ``encoder`` (one name in
    the weights, the one pretrained weights and the encoder's learning rate look for)."""

    def __init__(self, encoder: nn.Module, channels: int):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        self._encoder = (encoder,)
        self.fpn = FeaturePyramidNetwork(
            encoder.feature_info.channels(), channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> OrderedDict:
        feats = self._encoder[0](x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))


class _SemanticHead(nn.Module):
    """Panoptic FPN's semantic branch, slimmed: each level to 1/4 scale, summed, 1x1 to the
    classes, upsampled to the input."""

    def __init__(self, channels: int, n_classes: int, width: int = 64):
        super().__init__()
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True))
            for _ in range(4)
        )
        self.out = nn.Conv2d(width, n_classes, 1)

    def forward(self, feats: OrderedDict, size) -> torch.Tensor:
        p = list(feats.values())[:4]
        base = p[0].shape[-2:]
        x = sum(
            F.interpolate(m(f), size=base, mode="bilinear", align_corners=False) if i else m(f)
            for i, (m, f) in enumerate(zip(self.levels, p, strict=True))
        )
        return F.interpolate(self.out(x), size=size, mode="bilinear", align_corners=False)


def _no_resize_transform(in_channels: int, size: int):
    """torchvision's detector transform without its resize and normalisation: the engine's
    tiles arrive normalised and at the model's own scale."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class Transform(GeneralizedRCNNTransform):
        def resize(self, image, target=None):
            return image, target

        def normalize(self, image):
            return image

    return Transform(size, size, [0.0] * in_channels, [1.0] * in_channels)


@dataclass
class Features:
    """A training forward's batch, pyramid and semantic logits, waiting for the targets."""

    images: object  # torchvision's ImageList
    feats: OrderedDict
    sem: torch.Tensor


class PanopticMaskRCNN(nn.Module):
    """Mask R-CNN for the ``things`` class indices plus a semantic branch over all
    ``n_classes``. ``forward(x)``: eval, rendered logits (N x (classes + 1) x H x W);
    training, :class:`Features` for :meth:`losses`."""

    def __init__(
        self,
        encoder: str,
        in_channels: int,
        n_classes: int,
        things: list[int],
        tile: int = 512,
        **kw,
    ):
        super().__init__()
        from torchvision.models.detection import MaskRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator

        unknown = set(kw) - set(DEFAULTS)
        if unknown:
            raise GeoSegError(
                f"maskrcnn: unknown arch_kwargs {', '.join(sorted(unknown))}: use "
                f"{', '.join(DEFAULTS)}"
            )
        o = {**DEFAULTS, **kw}
        if not things:
            raise GeoSegError('maskrcnn needs thing classes: mark them "thing" in the class list')
        self.n_classes, self.things = n_classes, list(things)
        self.score_threshold, self.mask_threshold = o["score_threshold"], o["mask_threshold"]
        self.encoder = _encoder(encoder, in_channels)
        self.detector = MaskRCNN(
            _Backbone(self.encoder, int(o["fpn_channels"])),
            num_classes=len(things) + 1,
            rpn_anchor_generator=AnchorGenerator(ANCHORS, ((0.5, 1.0, 2.0),) * len(ANCHORS)),
            box_detections_per_img=int(o["detections"]),
            box_score_thresh=0.05,
        )
        self.detector.transform = _no_resize_transform(in_channels, tile)
        self.semantic = _SemanticHead(int(o["fpn_channels"]), n_classes)

    def forward(self, x: torch.Tensor):
        """Eval: rendered logits. Training: :class:`Features`, which :meth:`losses` takes
        with the targets (the training loop calls the model, then its loss, as for any
        model)."""
        det = self.detector
        size = tuple(x.shape[-2:])
        images, _ = det.transform(list(x.float().unbind(0)))
        feats = det.backbone(images.tensors)
        sem = self.semantic(feats, images.tensors.shape[-2:])[..., : size[0], : size[1]]
        if self.training:
            return Features(images, feats, sem)
        proposals, _ = det.rpn(images, feats)
        found, _ = det.roi_heads(feats, proposals, images.image_sizes)
        found = det.transform.postprocess(found, images.image_sizes, [size] * len(found))
        return render(
            sem, found, self.things, self.score_threshold, self.mask_threshold, self.n_classes
        )

    def losses(self, f: Features, targets: list[dict]) -> dict[str, torch.Tensor]:
        """The detector's losses (RPN; boxes, classes and masks) of a training forward;
        ``targets``: per image ``boxes`` (x0, y0, x1, y1), ``labels`` (thing position + 1)
        and ``masks``."""
        det = self.detector
        proposals, rpn = det.rpn(f.images, f.feats, targets)
        _, roi = det.roi_heads(f.feats, proposals, f.images.image_sizes, targets)
        return {**rpn, **roi}


def render(
    sem: torch.Tensor,
    found: list[dict],
    things: list[int],
    score_threshold: float,
    mask_threshold: float,
    n_classes: int,
) -> torch.Tensor:
    """Semantic logits and each tile's detections to class + border logits (see the module)."""
    eps = 1e-6
    probs = torch.softmax(sem.float(), dim=1)
    stuff = [k for k in range(n_classes) if k not in things]
    out = []
    for p, d in zip(probs, found, strict=True):
        keep = d["scores"] >= score_threshold
        masks, labels, scores = d["masks"][keep, 0], d["labels"][keep], d["scores"][keep]
        h, w = p.shape[-2:]
        thing = p.new_zeros((len(things), h, w))
        ids = torch.zeros((h, w), dtype=torch.int64, device=p.device)
        # the best object first; one mostly (> DUPLICATE) on pixels already drawn is a second
        # detection of the same object (box NMS keeps pairs below IoU 0.5): drawn, it would
        # put a contact line inside the object, so it adds its probability and no id
        for j in torch.argsort(scores, descending=True).tolist():
            t = int(labels[j]) - 1
            thing[t] = torch.maximum(thing[t], masks[j])
            mine = masks[j] >= mask_threshold
            area = int(mine.sum())
            if not area:
                continue
            free = mine & (ids == 0)
            if 1 - int(free.sum()) / area > DUPLICATE:
                continue
            ids[free] = j + 1
        total = thing.sum(0).clamp(max=1.0)
        classes = p.new_zeros((n_classes, h, w))
        if stuff:  # the likeliest stuff class gets 1 - the objects': they win above 0.5
            s = p[stuff]
            classes[stuff] = s / s.amax(0).clamp(min=eps) * (1 - total)
        for t, k in enumerate(things):
            classes[k] = thing[t]
        classes /= classes.sum(0).clamp(min=eps)
        border = _contact(ids).float()
        logit_b = torch.logit(border.clamp(eps, 1 - eps))
        out.append(torch.cat([torch.log(classes.clamp(min=eps)), logit_b[None]]))
    return torch.stack(out)


def _contact(ids: torch.Tensor) -> torch.Tensor:
    """Pixels of an object with a 4-neighbour in another object."""
    c = torch.zeros_like(ids, dtype=torch.bool)
    down = (ids[1:] != ids[:-1]) & (ids[1:] > 0) & (ids[:-1] > 0)
    right = (ids[:, 1:] != ids[:, :-1]) & (ids[:, 1:] > 0) & (ids[:, :-1] > 0)
    c[1:] |= down
    c[:-1] |= down
    c[:, 1:] |= right
    c[:, :-1] |= right
    return c
