"""Model factory: any segmentation-models-pytorch architecture by name, plus ``pixelnet`` and
``maskrcnn`` (:mod:`geoseg.model.maskrcnn`);
loading a bundle's model (:func:`load_model`) and making a bundle (:func:`create_bundle`).

``pixelnet`` is a tiny per-pixel network (1x1 convolutions). Its output at a pixel depends on
that pixel alone, which makes it the exact reference for seam tests and a near-free model for
measuring the engine's own cost.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from geoseg.core.classes import ClassList, load_classes
from geoseg.errors import GeoSegError
from geoseg.model.bundle import (
    META_FILE,
    WEIGHTS_FILE,
    BundleMeta,
    Normalization,
    read_meta,
    save_bundle,
    sha256_file,
    weights_path,
)

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
            nn.Conv2d(meta.in_channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, meta.n_outputs, 1)
        )
    if arch == "maskrcnn":
        from geoseg.model.maskrcnn import PanopticMaskRCNN

        heads = [h.name for h in meta.output_heads]
        if heads != ["classes", "boundary"]:
            raise GeoSegError(
                "maskrcnn renders its objects' contacts into a border head: give the bundle "
                "the heads classes and boundary (model.heads: [{name: boundary}])"
            )
        ids = [c.id for c in meta.class_list.classes]
        things = [ids.index(k) for k in meta.class_list.things]
        return PanopticMaskRCNN(
            meta.encoder, meta.in_channels, meta.n_classes, things, meta.tile, **meta.arch_kwargs
        )
    import segmentation_models_pytorch as smp

    name = ALIASES.get(arch)
    if name is None or not hasattr(smp, name):
        raise GeoSegError(
            f"unknown architecture {meta.architecture!r}: use one of "
            f"{', '.join(sorted(ALIASES))}, maskrcnn or pixelnet"
        )
    try:
        return getattr(smp, name)(
            encoder_name=meta.encoder,
            encoder_weights=None,
            in_channels=meta.in_channels,
            classes=meta.n_outputs,
            **meta.arch_kwargs,
        )
    except (KeyError, ValueError, TypeError) as e:
        raise GeoSegError(
            f"cannot build {meta.architecture} with encoder {meta.encoder!r}: "
            f"{str(e).splitlines()[0][:200]}"
        ) from None


def load_model(path: str | Path, device: str = "cpu"):
    """Build the model described by a bundle and load its weights (safetensors only)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(path)
    wp = weights_path(path)
    if not wp.exists():
        raise GeoSegError(f"bundle {path} has no {WEIGHTS_FILE}: the bundle is incomplete")
    if meta.weights_sha256 and sha256_file(wp) != meta.weights_sha256:
        raise GeoSegError(
            f"{wp} does not match the checksum in {META_FILE}: the weights were "
            "changed or damaged; re-create the bundle"
        )
    try:
        state = load_file(str(wp), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise GeoSegError(
            f"{wp} is not a safetensors file ({str(e).splitlines()[0]}); geoseg "
            "never loads pickled weights"
        ) from None
    model = build_model(meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise GeoSegError(
            f"weights in {wp} do not fit a {meta.architecture}/{meta.encoder} "
            f"with {meta.in_channels} bands and {meta.n_classes} classes "
            f"({detail[:200]})"
        ) from None
    model.eval()
    return model.to(torch.device(device)), meta


def create_bundle(
    out_dir: str | Path,
    *,
    classes,
    bands: int | list[int],
    architecture: str = "deeplabv3plus",
    encoder: str = "resnet34",
    arch_kwargs: dict | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    band_names: list[str] | None = None,
    tile: int = 512,
    overlap: int = 64,
    state_dict: str | Path | None = None,
    name: str = "geoseg-model",
    version: str = "0",
    seed: int = 0,
    provenance: dict | None = None,
) -> BundleMeta:
    """A bundle with fresh weights (seeded) or weights from an smp ``state_dict`` file
    (``.safetensors``, or a torch file read with ``weights_only=True``)."""
    import torch

    cl = classes if isinstance(classes, ClassList) else load_classes(classes)
    band_list = list(range(1, bands + 1)) if isinstance(bands, int) else list(bands)
    n = len(band_list)
    meta = BundleMeta(
        name=name,
        version=version,
        architecture=architecture,
        encoder=encoder,
        arch_kwargs=arch_kwargs or {},
        in_channels=n,
        bands=band_list,
        band_names=band_names or [],
        tile=tile,
        overlap=overlap,
        classes=cl.classes,
        normalization=Normalization(mean=mean or [0.0] * n, std=std or [1.0] * n),
        provenance={"trained": state_dict is not None, **(provenance or {})},
    )
    torch.manual_seed(seed)
    model = build_model(meta)
    if state_dict is not None:
        sd_path = Path(state_dict)
        if sd_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(sd_path))
        else:
            try:
                with warnings.catch_warnings():  # torch's notes on a plain pickle's protocol
                    warnings.simplefilter("ignore", UserWarning)
                    state = torch.load(sd_path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise GeoSegError(
                    f"cannot read {sd_path} as a state_dict with weights_only=True"
                    f" ({type(e).__name__}); geoseg loads no arbitrary pickles"
                ) from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise GeoSegError(
                f"{sd_path} does not fit {architecture}/{encoder} with {n} bands "
                f"and {len(cl.classes)} classes: {str(e).splitlines()[0]}"
            ) from None
        meta.provenance["source"] = sd_path.name
    return save_bundle(model, meta, out_dir)
