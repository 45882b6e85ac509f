"""Model factory: any segmentation-models-pytorch architecture by name, plus ``pixelnet``.

``pixelnet`` is a tiny per-pixel network (1x1 convolutions). Its output at a pixel depends on
that pixel alone, which makes it the exact reference for seam tests and a near-free model for
measuring the engine's own cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoseg.errors import GeoSegError

if TYPE_CHECKING:
    from geoseg.model.bundle import BundleMeta

ALIASES = {
    "deeplabv3plus": "DeepLabV3Plus",
    "deeplabv3": "DeepLabV3",
    "unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "fpn": "FPN",
    "pspnet": "PSPNet",
    "linknet": "Linknet",
    "manet": "MAnet",
    "pan": "PAN",
    "upernet": "UPerNet",
    "segformer": "Segformer",
    "dpt": "DPT",
}


def build_model(meta: BundleMeta):
    """An untrained model (``encoder_weights=None``: nothing is downloaded)."""
    import torch.nn as nn

    arch = meta.architecture.lower()
    if arch == "pixelnet":
        hidden = int(meta.arch_kwargs.get("hidden", 16))
        return nn.Sequential(
            nn.Conv2d(meta.in_channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, meta.n_classes, 1)
        )
    import segmentation_models_pytorch as smp

    name = ALIASES.get(arch)
    if name is None or not hasattr(smp, name):
        raise GeoSegError(
            f"unknown architecture {meta.architecture!r}: use one of "
            f"{', '.join(sorted(ALIASES))} or pixelnet"
        )
    try:
        return getattr(smp, name)(
            encoder_name=meta.encoder,
            encoder_weights=None,
            in_channels=meta.in_channels,
            classes=meta.n_classes,
            **meta.arch_kwargs,
        )
    except (KeyError, ValueError, TypeError) as e:
        raise GeoSegError(
            f"cannot build {meta.architecture} with encoder {meta.encoder!r}: "
            f"{str(e).splitlines()[0][:200]}"
        ) from None
