"""``geoseg train``: a land-cover model from scenes and labels, saved as a safe bundle.

Steps: open the scenes and labels; split each scene into training and validation pixels with
a buffer between them; per-band mean/std from the training pixels; an smp model (DeepLabV3+ by
default) trained by AdamW on random (optionally class-balanced) crops with augmentation,
validated on fixed windows after every epoch, checkpointed every epoch, stopped early when the
validation mIoU stops improving; the best epoch is written as a bundle with its history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geoseg.core.classes import ClassList, load_classes
from geoseg.errors import GeoSegError
from geoseg.model.bundle import BundleMeta, Normalization, TrainedOn, save_bundle
from geoseg.model.factory import build_model
from geoseg.model.runner import memory_format, normalize
from geoseg.train.augment import augment, resample, zoom_size
from geoseg.train.checkpoint import (
    clear_checkpoint,
    has_checkpoint,
    load_checkpoint,
    load_tensors,
    read_state,
    remove_checkpoint,
    save_checkpoint,
)
from geoseg.train.config import TrainConfig, load_config
from geoseg.train.detection import DetectionLoss
from geoseg.train.heads import ClassesOnly, HeadsLoss, bundle_heads
from geoseg.train.history import CSV_NAME, PNG_NAME, plot_curves, write_csv
from geoseg.train.losses import SegmentationLoss, class_weights
from geoseg.train.optim import freeze_encoder, lr_at, make_optimizer, set_lr
from geoseg.train.precision import requested, resolve, training_device
from geoseg.train.prepare import TrainingData, prepare
from geoseg.train.progress import TrainProgress
from geoseg.train.validate import ValSet, autocast, build_val_set, evaluate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    bundle: Path
    meta: BundleMeta
    history: list[dict]
    best_epoch: int
    best_miou: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    history_csv: Path
    curves_png: Path
    checkpoint_dir: Path


def checkpoint_folder(cfg: TrainConfig, resume: bool) -> Path:
    """Where this run's checkpoint goes (or, with ``resume``, the one it continues: also the
    folder inside the bundle that older versions of geoseg wrote)."""
    ck = cfg.checkpoints
    if not resume or has_checkpoint(ck):
        return ck
    if not cfg.checkpoint_dir and has_checkpoint(cfg.legacy_checkpoints):
        return cfg.legacy_checkpoints
    if (Path(cfg.output) / "bundle.json").exists():
        raise GeoSegError(
            f"no checkpoint to resume from in {ck}: {cfg.output} is a finished training, "
            "whose checkpoint was removed: run without --resume to train again "
            "(--keep-checkpoint, or keep_checkpoint: true, keeps it to continue a run later)"
        )
    return ck  # reading it says there is none


def fingerprint(cfg: TrainConfig) -> str:
    """What a checkpoint must share with the config it resumes under."""
    keep = cfg.model_dump(
        mode="json", include={"classes", "scenes", "bands", "ignore_values", "split", "model"}
    )
    keep["crop"] = cfg.training.crop
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def standardization(cfg: TrainConfig, dtypes, mean, std) -> dict:
    """The model inputs' mean and std (training.standardize): ImageNet's RGB statistics
    where the encoder starts from ImageNet weights and the scenes are 3-band 8-bit (the
    weights' own input distribution), the training pixels' band statistics otherwise."""
    want = cfg.training.standardize
    rgb8 = len(dtypes) == 3 and all(str(d) == "uint8" for d in dtypes)
    if want == "auto":
        want = "imagenet" if rgb8 and _imagenet_start(cfg) else "bands"
    if want == "bands":
        return {"mean": mean, "std": std}
    if not rgb8:
        raise GeoSegError(
            "training.standardize: imagenet needs 3-band 8-bit RGB scenes; use bands "
            "(the training pixels' statistics) for these"
        )
    from geoseg.train.lite_weights import IMAGENET

    return {**IMAGENET, "source": "imagenet"}


def _imagenet_start(cfg: TrainConfig) -> bool:
    from geoseg.train.encoder_weights import looks_like_file

    w = cfg.model.encoder_weights
    return bool(w) and not looks_like_file(w)  # every named weight set is ImageNet's


def _batch(data: TrainingData, meta: BundleMeta, cfg: TrainConfig, rng: np.random.Generator):
    tc = cfg.training
    xs, ys = [], []
    for _ in range(tc.batch_size):
        s, w = data.sampler.sample(rng, zoom_size(tc.crop, tc.augment, rng))
        x, valid, y = data.scenes[s].read(w)
        # normalised first: invalid pixels are 0 (the mean) before bands are interpolated
        x, valid, y = resample(normalize(x, valid, meta), valid, y, tc.crop)
        x, y = augment(x, valid, y, tc.augment, rng)
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _row(
    epoch: int, lr: float, loss: float, val: dict, classes: ClassList, seconds: float, rate: float
) -> dict:
    row = {
        "epoch": epoch,
        "lr": lr,
        "train_loss": loss,
        "val_loss": val["loss"],
        "val_oa": val["oa"],
        "val_miou": val["miou"],
    }
    for c, v in zip(classes.classes, val["iou"], strict=True):
        row[f"iou_{c.name}"] = float(v)
    row.update(seconds=round(seconds, 2), samples_per_s=round(rate, 2))
    return row


def _shown(path: str) -> str:
    """``path`` relative to the working directory when inside it (provenance stays portable)."""
    p = Path(path).resolve()
    return str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)


def _nan_to_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _nan_to_none(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    return v


def train(
    config,
    *,
    resume: bool = False,
    progress: bool = False,
    on_epoch=None,
    precision: str | None = None,
    init_from: str | None = None,
    normalization: dict | None = None,
    provenance: dict | None = None,
    keep_checkpoint: bool | None = None,
) -> TrainResult:
    """Train the model described by ``config`` (a YAML path, a dict or a TrainConfig) and
    write its bundle. ``resume`` continues from the checkpoint of an interrupted run;
    ``on_epoch(row)`` is called after each epoch's checkpoint is written; ``precision``
    (auto, fp32, bf16) overrides ``training.precision``. ``init_from``: a bundle whose
    weights start the whole model (fine-tuning; the config's model must match it);
    ``normalization``: the model inputs' mean and std (and source) instead of the training
    pixels' (a fine-tuned model keeps its parent's input contract); ``provenance``: entries
    added to the bundle's. The resume checkpoint (``<output>.checkpoint`` beside the bundle
    unless ``checkpoint_dir`` says otherwise) is removed once the bundle is written, unless
    ``keep_checkpoint`` (default: the config's ``keep_checkpoint``)."""
    t_start = time.perf_counter()
    cfg = load_config(config)
    if keep_checkpoint is not None:
        cfg = cfg.model_copy(update={"keep_checkpoint": keep_checkpoint})
    tc = cfg.training
    classes = load_classes(cfg.classes)
    device = training_device(tc)
    want = requested(tc, precision)
    threads = torch.get_num_threads()
    if tc.threads:
        torch.set_num_threads(tc.threads)
    try:
        extra = {"init_from": init_from, "normalization": normalization, "provenance": provenance}
        return _train(cfg, classes, device, want, resume, progress, on_epoch, t_start, extra)
    finally:
        torch.set_num_threads(threads)


def _train(
    cfg: TrainConfig,
    classes: ClassList,
    device,
    want: str,
    resume: bool,
    progress: bool,
    on_epoch,
    t_start: float,
    extra: dict,
) -> TrainResult:
    tc = cfg.training
    ck = checkpoint_folder(cfg, resume)  # before any work: --resume without one fails now
    data = prepare(cfg, classes)
    first = data.scenes[0].scene.info
    meta = BundleMeta(
        name=cfg.name,
        version=cfg.version,
        architecture=cfg.model.architecture,
        encoder=cfg.model.encoder,
        arch_kwargs=cfg.model.arch_kwargs,
        in_channels=len(data.bands),
        bands=data.bands,
        band_names=[first.band_names[b - 1] for b in data.bands],
        normalization=Normalization(
            **standardization(cfg, [first.dtypes[b - 1] for b in data.bands], data.mean, data.std),
            quantiles=data.quantiles,
            mode=cfg.training.normalize,
            spread=data.spread,
        ),
        classes=classes.classes,
        tile=cfg.model.tile,
        overlap=cfg.model.overlap,
        heads=bundle_heads(cfg.model.heads, len(classes.classes)),
        trained_on=TrainedOn(pixel_m=first.pixel_m, dtype=first.dtypes[data.bands[0] - 1]),
    )
    semi = None
    if tc.unlabelled is not None:
        from geoseg.train.semi import Unlabelled

        spare = max(0, cfg.cache_mb * 2**20 - sum(d.nbytes for d in data.scenes if d.cached))
        semi = Unlabelled(tc.unlabelled, data.bands, tc.crop, spare)
    torch.manual_seed(tc.seed)
    model = build_model(meta)
    init = None
    if extra["init_from"]:
        from geoseg.model.factory import load_model

        parent, _ = load_model(extra["init_from"])
        model.load_state_dict(parent.state_dict())
        init = {"bundle": str(Path(extra["init_from"]).resolve())}
    elif cfg.model.encoder_weights:
        from geoseg.train.encoder_weights import load_encoder_weights

        init = load_encoder_weights(model, cfg.model.encoder_weights, meta)
    model.to(device, memory_format=memory_format(device))
    earlier = read_state(ck).get("precision") if resume else None
    if want == "auto" and earlier:  # a resumed run goes on in what it started in
        prec = earlier
    else:
        prec = resolve(want, device, model, len(data.bands), len(classes.classes), tc)
    amp_dtype = torch.bfloat16 if prec["precision"] == "bf16" else None
    opt = make_optimizer(model, tc)
    weights = class_weights(tc.loss, data.class_pixels)
    loss_fn = SegmentationLoss(tc.loss, weights).to(device)
    if cfg.model.heads:  # one loss per head; validation reads the classes head alone
        things = [i for i, c in enumerate(classes.classes) if c.thing]
        if not things:
            raise GeoSegError(
                "model.heads need thing classes: mark the countable classes with thing: true "
                "in the class list"
            )
        loss_fn = HeadsLoss(loss_fn, len(classes.classes), cfg.model.heads, things)
        if hasattr(model, "detector"):  # maskrcnn: its objects from the labels' components
            loss_fn = DetectionLoss(loss_fn.classes, model, things)
    vs = build_val_set(data.scenes, data.splits, meta, tc.val_window, tc.val_max_pixels, tc.seed)
    if not len(vs):
        raise GeoSegError("the validation pixels hold no labels: check the labels and split")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    steps = math.ceil(tc.samples_per_epoch / tc.batch_size)
    total = steps * tc.epochs
    state = {
        "epoch": 0,
        "history": [],
        "best_miou": -math.inf,
        "best_epoch": 0,
        "bad": 0,
        "stopped": False,
        "seconds": 0.0,
        "fingerprint": fingerprint(cfg),
        "precision": prec,
    }
    if resume:
        if read_state(ck)["fingerprint"] != fingerprint(cfg):
            raise GeoSegError(
                f"the checkpoint in {ck} was made with other data, classes, split "
                "or model settings: run without --resume to start over"
            )
        state = {"precision": prec, **load_checkpoint(ck, model, opt)}
        log.info("resuming after epoch %d", state["epoch"])
    else:
        clear_checkpoint(ck)
        if not cfg.checkpoint_dir:  # an older run's, inside the bundle folder
            remove_checkpoint(cfg.legacy_checkpoints)
    t_run = time.perf_counter()
    seconds_before = state["seconds"]
    bar = TrainProgress(tc.epochs, steps * tc.batch_size) if progress else None
    try:
        for epoch in range(state["epoch"] + 1, tc.epochs + 1):
            if state["stopped"]:
                break
            state = _epoch(
                epoch,
                state,
                model,
                opt,
                loss_fn,
                data,
                meta,
                cfg,
                vs,
                steps,
                total,
                device,
                amp_dtype,
                classes,
                bar,
                semi,
            )
            state["seconds"] = seconds_before + time.perf_counter() - t_run
            save_checkpoint(ck, model, opt, state, best=state["best_epoch"] == epoch)
            write_csv(state["history"], out / CSV_NAME)
            if bar:
                bar.report(state["history"][-1], state["best_epoch"] == epoch)
            if on_epoch is not None:
                on_epoch(state["history"][-1])
    finally:
        if bar:
            bar.stop()
    init = {"encoder_init": init, **(extra["provenance"] or {})}
    return _finish(cfg, ck, model, meta, data, vs, state, classes, device, prec, init, t_start)


def _epoch(
    epoch,
    state,
    model,
    opt,
    loss_fn,
    data,
    meta,
    cfg,
    vs: ValSet,
    steps,
    total,
    device,
    amp_dtype,
    classes,
    bar,
    semi=None,
) -> dict:
    tc = cfg.training
    rng = np.random.default_rng([tc.seed, epoch])
    torch.manual_seed(tc.seed * 100_003 + epoch)
    model.train()
    freeze_encoder(model, opt, epoch <= tc.freeze_encoder_epochs)
    t0 = time.perf_counter()
    loss_sum, lr, confident = 0.0, tc.lr, 0.0
    urng = np.random.default_rng([tc.seed, epoch, 1])  # its own stream: labelled crops as before
    for s in range(steps):
        lr = lr_at((epoch - 1) * steps + s, total, tc)
        set_lr(opt, lr)
        x, y = _batch(data, meta, cfg, rng)
        x = x.to(device, non_blocking=True, memory_format=memory_format(device))
        y = y.to(device, non_blocking=True)
        if semi is None:
            with autocast(device, amp_dtype):
                logits = model(x)
            loss = loss_fn(logits, y)
        else:
            loss, share = _semi_step(model, x, y, semi, meta, tc, urng, loss_fn, device, amp_dtype)
            confident += share / steps
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        if bar:
            bar.advance(epoch, tc.batch_size, loss.item())
    seconds = time.perf_counter() - t0
    n = len(classes.classes)
    if isinstance(loss_fn, HeadsLoss | DetectionLoss):
        val_model, val_loss = ClassesOnly(model, n), loss_fn.classes
    else:
        val_model, val_loss = model, loss_fn
    val = evaluate(val_model, vs, n, val_loss, device=device, amp_dtype=amp_dtype)
    row = _row(
        epoch,
        lr,
        loss_sum / steps,
        val,
        classes,
        time.perf_counter() - t0,
        steps * tc.batch_size / seconds,
    )
    if semi is not None:
        row["unlabelled_confident"] = round(confident, 4)
    state = {**state, "epoch": epoch, "history": [*state["history"], row]}
    es = tc.early_stopping
    delta = es.min_delta if es else 0.0
    miou = val["miou"] if math.isfinite(val["miou"]) else -math.inf
    if miou > state["best_miou"] + delta or state["best_epoch"] == 0:
        state.update(best_miou=miou, best_epoch=epoch, bad=0)
    else:
        state["bad"] += 1
        state["stopped"] = es is not None and state["bad"] >= es.patience
    return state


def _semi_step(model, x, y, semi, meta, tc, rng, loss_fn, device, amp_dtype):
    """One FixMatch step (:mod:`geoseg.train.semi`): the labelled loss plus the weighted
    loss of the strong views towards the weak views' confident pseudo-labels."""
    from geoseg.train.semi import fixmatch_loss, pseudo_labels

    u = semi.cfg
    weak, strong, valid = semi.batch(u.batch_size or tc.batch_size, meta, rng)
    fmt = memory_format(device)
    weak, strong = (t.to(device, memory_format=fmt) for t in (weak, strong))
    valid = valid.to(device)
    model.eval()  # the teacher's view: running statistics, no gradients
    with torch.no_grad(), autocast(device, amp_dtype):
        label, mask = pseudo_labels(model(weak), valid, u.threshold)
    model.train()
    with autocast(device, amp_dtype):
        logits = model(torch.cat([x, strong]))
    n = x.shape[0]
    loss = loss_fn(logits[:n], y) + u.weight * fixmatch_loss(logits[n:], label, mask, valid)
    return loss, float(mask.float().mean())


def _finish(
    cfg: TrainConfig,
    ck: Path,
    model,
    meta: BundleMeta,
    data: TrainingData,
    vs: ValSet,
    state: dict,
    classes: ClassList,
    device,
    prec: dict,
    init: dict,
    t_start,
) -> TrainResult:
    """The best epoch's bundle; ``init``: how the model started, and provenance to add."""
    final = read_state(ck)
    model.load_state_dict(load_tensors(ck, final, "best"))
    history = final["history"]
    best = history[final["best_epoch"] - 1]
    out = Path(cfg.output)
    png = plot_curves(
        history, out / PNG_NAME, f"{cfg.name}: {cfg.model.architecture}/{cfg.model.encoder}"
    )
    wall = final["seconds"]
    prov = _nan_to_none(
        {
            "trained": True,
            "config": cfg.given,
            "epochs": final["epoch"],
            "best_epoch": final["best_epoch"],
            "best_val_miou": best["val_miou"],
            "best_val_oa": best["val_oa"],
            "best_val_iou": {k[4:]: v for k, v in best.items() if k.startswith("iou_")},
            "stopped_early": final["stopped"],
            "wall_seconds": round(wall, 1),
            "device": str(device),
            "torch": torch.__version__,
            "precision": prec["precision"],
            "precision_reason": prec["reason"],
            "data": [
                {
                    "name": d.name,
                    "role": d.role,
                    "image": [_shown(p) for p in d.scene.paths],
                    "labels": _shown(d.labels.path) if d.labels else None,
                    "size": [d.height, d.width],
                }
                for d in data.scenes
            ],
            "train_pixels": {
                c.name: int(v) for c, v in zip(classes.classes, data.class_pixels, strict=True)
            },
            "val_pixels": vs.pixels,
            **init,
        }
    )
    meta = meta.model_copy(update={"provenance": prov})
    model.cpu()
    meta = save_bundle(model, meta, out)
    if not cfg.keep_checkpoint:  # the bundle ships as it is; nothing to resume any more
        remove_checkpoint(ck)
    return TrainResult(
        out,
        meta,
        history,
        final["best_epoch"],
        best["val_miou"],
        final["epoch"],
        final["stopped"],
        time.perf_counter() - t_start,
        out / CSV_NAME,
        png,
        ck,
    )
