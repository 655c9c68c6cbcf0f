"""One run: (method, dataset, bits, seed) -> trained method -> codes -> metrics -> result file.

The runner owns everything around a method's training loop: choosing encoders, seeding, the device,
checkpoints and resume, encoding the query and retrieval splits, scoring, provenance, and writing the
result atomically. A run whose result file exists is skipped unless ``force``.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from filelock import Timeout

from cmhbench.data.dataset import Dataset
from cmhbench.data.sources import SplitData
from cmhbench.errors import CmhbenchError
from cmhbench.evaluation import check_directions, evaluate_directions
from cmhbench.evaluation.collapse import code_statistics
from cmhbench.evaluation.hamming import MAX_BITS
from cmhbench.features import cached_features, with_features
from cmhbench.hparams import choose_preset, resolve_hparams
from cmhbench.method import HashingMethod, MethodSetup
from cmhbench.plugins.registry import Registry, get_registry
from cmhbench.results import SCHEMA_VERSION, ResultStore, compute_run_id, content_digest, run_definition
from cmhbench.results import provenance
from cmhbench.results.lock import release_run_lock, run_lock
from cmhbench.specs import DatasetSpec, MethodSpec
from cmhbench.suggest import unknown_name_message
from cmhbench.train.context import TrainContext, resolve_device, seed_everything

ENCODE_BATCH = 256


@dataclass
class RunRequest:
    """What `cmhbench run` asks for, one code length and one seed."""

    method: str
    dataset: str
    bits: int
    seed: int = 0
    epochs: int | None = None
    device: str = "auto"
    precision: str = "auto"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    image_encoder: str | None = None
    image_weights: str | None = None
    results_dir: str | Path = "results"
    force: bool = False
    quiet: bool = False
    directions: Sequence[str] = ("i2t", "t2i")


@dataclass
class RunOutcome:
    path: Path | None  # None for an artifact-only run (no codes, so no result file)
    result: dict[str, Any]
    skipped: bool
    #: what a run that trained leaves in memory (not in the result file), for callers that check a
    #: method (cmhbench.testing): the trained method, its query/retrieval codes, the training
    #: context and the dataset it ran on; None when the run was skipped
    trained: "TrainedRun | None" = None


@dataclass
class TrainedRun:
    method: HashingMethod
    codes: dict[str, dict[str, np.ndarray]]
    ctx: TrainContext
    dataset: Dataset


def open_dataset(spec: DatasetSpec, options: Mapping[str, Any]) -> Dataset:
    unknown = set(options) - set(spec.option_defaults)
    if unknown:
        raise CmhbenchError(
            unknown_name_message(f"{spec.name} dataset option", sorted(unknown)[0], spec.option_defaults)
            + " (in --dataset-opt)")
    return spec.open(dict(options))


NO_ENCODER = "none"  # the image encoder recorded for a method with input="direct"


def choose_encoders(request: RunRequest, method: MethodSpec, dataset_spec: DatasetSpec,
                    dataset: Dataset, registry: Registry) -> dict[str, dict[str, Any]]:
    protocol = dataset_spec.protocol
    text = {"name": protocol.text_encoder, "weights": "none"}
    if dataset.text_kind not in registry.encoder(protocol.text_encoder).accepts:
        raise CmhbenchError(f"text encoder {protocol.text_encoder} cannot read {dataset.text_kind} texts")
    if method.input == "direct":  # no backbone: the method reads the stored images itself
        if request.image_encoder or request.image_weights:
            raise CmhbenchError(f"{method.name} takes images directly (no backbone): --image-encoder and "
                                "--image-weights do not apply to it")
        return {"image": {"name": NO_ENCODER, "weights": "none"}, "text": text}
    if dataset.image_kind == "features":
        default_image = "identity"
    else:
        default_image = protocol.image_encoder or method.image_encoder
    image_name = request.image_encoder or default_image
    if not image_name:
        raise CmhbenchError(
            f"{method.name} learns on feature vectors, and dataset {dataset.name} has image pixels: name the "
            f"encoder that extracts them (once, cached): `cmhbench run ... --image-encoder alexnet` (or vgg19, "
            f"resnet50), or in a sweep file the key `image_encoders: {{{dataset.name}: alexnet}}`")
    image_spec = registry.encoder(image_name)
    if dataset.image_kind not in image_spec.accepts:
        hint = "identity" if dataset.image_kind == "features" else method.image_encoder
        raise CmhbenchError(
            f"--image-encoder {image_name} takes {'/'.join(image_spec.accepts)} input, but dataset "
            f"{dataset.name} has image {dataset.image_kind}; use --image-encoder {hint}")
    if image_name == "identity":
        weights = "none"
    elif request.image_weights:
        weights = request.image_weights
    elif protocol.image_encoder and image_name != protocol.image_encoder and protocol.other_image_weights:
        weights = protocol.other_image_weights
    else:
        weights = protocol.image_weights
    frozen = method.input == "features" and image_name != "identity"
    return {"image": {"name": image_name, "weights": weights, **({"frozen": True} if frozen else {})},
            "text": text}


@dataclass
class RunPlan:
    """Everything a run is, decided before any training: its definition, run_id and result path."""

    request: RunRequest
    method_spec: MethodSpec
    dataset_spec: DatasetSpec
    dataset: Dataset
    hparams: dict[str, Any]
    preset: str | None
    encoders: dict[str, dict[str, Any]]
    epoch_override: int | None
    definition: dict[str, Any]
    run_id: str
    store: ResultStore
    path: Path


def plan(request: RunRequest, registry: Registry | None = None) -> RunPlan:
    """Validate a request and fix its identity; cheap (opens the dataset, trains nothing)."""
    registry = registry or get_registry()
    method_spec = registry.method(request.method)
    dataset_spec = registry.dataset(request.dataset)
    if request.bits <= 0:
        raise CmhbenchError(f"--bits {request.bits}: code lengths must be positive")
    if request.bits > MAX_BITS:
        raise CmhbenchError(f"--bits {request.bits}: the evaluator scores codes of at most {MAX_BITS} bits")
    if request.epochs is not None and request.epochs < 1:
        raise CmhbenchError(f"--epochs {request.epochs}: expected at least 1")
    check_directions(request.directions)
    protocol = dataset_spec.protocol
    preset = choose_preset(method_spec, protocol.preset, request.preset)
    hparams = resolve_hparams(method_spec, preset, request.hparams)
    resolve_device(request.device)  # a bad --device fails here, before any work
    dataset = open_dataset(dataset_spec, request.dataset_options)
    encoders = choose_encoders(request, method_spec, dataset_spec, dataset, registry)
    epoch_override = request.epochs if request.epochs is not None else protocol.epochs

    definition = run_definition(
        method=method_spec.name, hyperparameters=hparams, preset=preset,
        dataset={**dataset.describe(), "options": dict(request.dataset_options)},
        protocol=dataset_spec.protocol.as_dict(), bits=request.bits, seed=request.seed,
        epoch_override=epoch_override, encoders=encoders, directions=list(request.directions),
        precision=requested_precision(request))
    run_id = compute_run_id(definition)
    store = ResultStore(request.results_dir)
    return RunPlan(request=request, method_spec=method_spec, dataset_spec=dataset_spec, dataset=dataset,
                   hparams=hparams, preset=preset, encoders=encoders, epoch_override=epoch_override,
                   definition=definition, run_id=run_id, store=store,
                   path=store.result_path(definition, run_id))


def run(request: RunRequest, registry: Registry | None = None, *, hold_lock: bool = True,
        on_wait: Callable[[str], None] | None = None) -> RunOutcome:
    """Train, encode, evaluate and record one run. See the module docstring.

    The run's lock (cmhbench.results.lock) is held throughout, so an identical run started meanwhile
    waits and then finds this one's result instead of training again; ``on_wait`` is told when this
    call has to wait. ``hold_lock=False`` is for a caller that holds the lock already (a sweep worker).
    """
    registry = registry or get_registry()
    p = plan(request, registry)
    if p.path.exists() and not request.force:
        return RunOutcome(p.path, p.store.read(p.path), skipped=True)
    if not hold_lock:
        return execute(p, registry)
    lock = run_lock(p.store.root, p.run_id)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait(f"another process is running {p.run_id} (same definition); waiting for it to finish")
        lock.acquire(timeout=-1)
    if p.path.exists() and not request.force:  # finished by another process since the check above
        release_run_lock(lock, True)
        return RunOutcome(p.path, p.store.read(p.path), skipped=True)
    try:
        return execute(p, registry)
    finally:
        release_run_lock(lock, p.path.exists())


def check_bits_limit(spec: MethodSpec, bits: int, image_dim: int, text_dim: int, dataset: str) -> None:
    """Refuse, before any training, a code length the method cannot give on these inputs."""
    limit = spec.max_bits(image_dim, text_dim) if spec.max_bits is not None else None
    if limit is not None and bits > limit:
        raise CmhbenchError(f"--bits {bits}: {spec.name} gives at most {limit} bits on {dataset} "
                            f"({image_dim}-d image and {text_dim}-d text inputs)")


def execute(p: RunPlan, registry: Registry) -> RunOutcome:
    """Train (resuming from the run's checkpoint when there is one), encode, score, write."""
    request, dataset, encoders = p.request, p.dataset, p.encoders
    method_spec, dataset_spec, hparams = p.method_spec, p.dataset_spec, p.hparams
    preset, epoch_override, definition, run_id = p.preset, p.epoch_override, p.definition, p.run_id
    store, path = p.store, p.path
    device = resolve_device(request.device)

    seed_everything(request.seed)
    image_encoder = None
    if encoders["image"]["name"] != NO_ENCODER:
        image_encoder = registry.encoder(encoders["image"]["name"]).create(
            encoders["image"]["weights"], dataset.image_shape[0] if dataset.image_kind == "features" else None)
    if encoders["image"].get("frozen"):
        # shallow methods: the encoder runs once, its features are cached and learnt on
        cache = cached_features(dataset, encoders["image"]["name"], encoders["image"]["weights"],
                                image_encoder, device, quiet=request.quiet, init_seed=int(request.seed))
        dataset = with_features(dataset, cache)
        image_encoder = registry.encoder("identity").create("none", dataset.image_shape[0])
        seed_everything(request.seed)
    text_encoder = registry.encoder(encoders["text"]["name"]).create("none", dataset.text_dim)
    image_dim = image_encoder.out_dim if image_encoder is not None else int(np.prod(dataset.image_shape))
    check_bits_limit(method_spec, int(request.bits), image_dim, text_encoder.out_dim, dataset.name)
    train = SplitData(dataset, "train", device)
    setup = MethodSetup(bits=int(request.bits), hparams=hparams, image_encoder=image_encoder,
                        text_encoder=text_encoder, num_train=len(train), num_labels=dataset.num_labels,
                        text_dim=dataset.text_dim, image_kind=dataset.image_kind,
                        text_kind=dataset.text_kind, device=device, seed=int(request.seed),
                        dataset_id=compute_run_id({"dataset": definition["dataset"], "encoders": encoders}))
    method = method_spec.create(setup)

    checkpoint_dir = store.checkpoint_dir(run_id)
    if request.force and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    ctx = TrainContext(device=device, seed=request.seed, checkpoint_dir=checkpoint_dir,
                       precision=resolve_precision(request.precision, method_spec, device), quiet=request.quiet,
                       epoch_override=epoch_override, schedule=published_schedule(method_spec, hparams),
                       run_id=run_id)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ctx.bind(method)
    with ctx.progress_display():
        method.fit(train, ctx)
    _sync(device)
    train_seconds = ctx.train_seconds()  # a resumed run adds its earlier segments' time
    epochs_run = check_epochs_run(ctx, method_spec)
    check_losses_finite(ctx.history, method_spec)
    if not method.produces_codes:
        # an artifact-only run (e.g. DAPH stage 1): nothing to score, so no result file
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return RunOutcome(None, {"run_id": run_id, "method": {"name": method_spec.name, "hyperparameters": hparams},
                                 "dataset": {"name": dataset.name}, "bits": int(request.bits),
                                 "seed": int(request.seed), "artifacts": method.artifacts(),
                                 "training": {"history": ctx.history}, "timings": {"train_seconds": train_seconds}},
                          skipped=False)

    started = time.perf_counter()
    codes = {split: encode_split(method, SplitData(dataset, split, device), ctx) for split in ("query", "retrieval")}
    _sync(device)
    encode_seconds = time.perf_counter() - started

    started = time.perf_counter()
    metrics = evaluate_directions(
        codes["query"], codes["retrieval"], dataset.labels[dataset.splits["query"]],
        dataset.labels[dataset.splits["retrieval"]], directions=request.directions, device=device)
    evaluate_seconds = time.perf_counter() - started

    result = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "method": {
            "name": method_spec.name,
            "description": method_spec.description,
            "citation": str(method_spec.citation),
            "plugin": registry.origin("method", method_spec.name),
            "hyperparameters": hparams,
            "preset": preset,
        },
        # the dataset as planned (the run's identity), not the frozen-feature view trained on
        "dataset": {**p.dataset.describe(), "options": dict(request.dataset_options)},
        "protocol": dataset_spec.protocol.as_dict(),
        "bits": int(request.bits),
        "seed": int(request.seed),
        "epoch_override": epoch_override,
        # the precision asked for is part of the identity (absent for auto): as the definition has it
        **({"precision_requested": definition["precision"]} if "precision" in definition else {}),
        "encoders": encoders,
        "metrics": metrics,
        "training": {"history": ctx.history, "resumed_from": ctx.resumed_from, "precision": ctx.precision,
                     "epochs": epochs_run},
        "codes": code_statistics(codes, dataset),
        "diagnostics": method.diagnostics(),
        "artifacts": method.artifacts(),
        "timings": {"train_seconds": train_seconds, "encode_seconds": encode_seconds,
                    "evaluate_seconds": evaluate_seconds, "train_segments": ctx.segments},
        "peak_memory": provenance.peak_memory(device),
        "environment": provenance.environment(device),
        "git_commit": provenance.git_commit(),
        "command": provenance.command_line(),
        "rerun": provenance.rerun_command(request),
        "created_utc": provenance.utc_now(),
    }
    result["content_sha256"] = content_digest(result)
    store.write(path, result)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return RunOutcome(path, result, skipped=False, trained=TrainedRun(method, codes, ctx, dataset))


def published_schedule(spec: MethodSpec, hparams: Mapping[str, Any]) -> dict[str, int] | None:
    """Each declared stage's published epoch count under these hyper-parameters (None when the
    method declares no schedule)."""
    if spec.stages is None:
        return None
    return {stage: int(hparams[key]) for stage, key in spec.stages.items()}


def requested_precision(request: RunRequest) -> str | None:
    """The precision a run asked for explicitly (part of its identity), None for auto."""
    if request.precision not in ("auto", "bf16", "fp32"):
        raise CmhbenchError(f"--precision {request.precision!r}: expected auto, bf16 or fp32")
    return None if request.precision == "auto" else request.precision


def resolve_precision(requested: str, spec: MethodSpec, device: torch.device) -> str:
    """``auto``: the method's ``cuda_precision`` on a GPU, fp32 on the CPU."""
    if requested == "auto":
        return spec.cuda_precision if device.type == "cuda" else "fp32"
    return requested


def check_epochs_run(ctx: TrainContext, spec: MethodSpec) -> dict[str, dict[str, int]]:
    """The per-stage epoch record, refused when a stage stopped short of its budget (a result must
    not claim a budget its training did not run)."""
    record = ctx.epochs_record()
    for stage, counts in record.items():
        if counts["run"] != counts["planned"]:
            raise CmhbenchError(
                f"method {spec.name} ran {counts['run']} of the {counts['planned']} epochs planned for stage "
                f"{stage!r}; a method must loop over every epoch ctx.epochs yields (no result written)")
    return record


def check_losses_finite(history: Sequence[Mapping[str, Any]], spec: MethodSpec) -> None:
    """A run whose logged loss became NaN or infinite diverged: its codes are whatever the broken
    weights give (typically one code for everything), so no result is written for it."""
    for entry in history:
        for key, value in entry.items():
            if key not in ("stage", "epoch") and not math.isfinite(value):
                raise CmhbenchError(
                    f"method {spec.name} diverged: {key} = {value} in stage {entry['stage']!r}, epoch "
                    f"{entry['epoch'] + 1} (no result written; try a smaller learning rate, or --precision fp32)")


def encode_split(method: HashingMethod, split: SplitData, ctx: TrainContext) -> dict[str, np.ndarray]:
    """Codes of one split for both modalities, as int8 numpy arrays in split order."""
    codes: dict[str, list[torch.Tensor]] = {"image": [], "text": []}
    with torch.inference_mode(), ctx.autocast():
        for batch in split.batches(ENCODE_BATCH):
            codes["image"].append(method.encode_image(batch.images))
            codes["text"].append(method.encode_text(batch.texts))
    out = {}
    for modality, parts in codes.items():
        array = torch.cat(parts).cpu().numpy()
        if array.shape != (len(split), method.bits) or not np.isin(array, (-1, 1)).all():
            raise CmhbenchError(
                f"method returned {modality} codes of shape {array.shape} with values "
                f"{np.unique(array)[:4].tolist()}; expected {(len(split), method.bits)} in {{-1, +1}}")
        out[modality] = array.astype(np.int8)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
