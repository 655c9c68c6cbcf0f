"""One run: (method, dataset, bits, seed) -> trained method -> codes -> metrics -> result file.

The runner owns everything around a method's training loop: choosing encoders, seeding, the device,
checkpoints and resume, encoding the query and retrieval splits, scoring, provenance, and writing the
result atomically. A run whose result file exists is skipped unless ``force``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import Timeout

from cmhbench.data.dataset import Dataset
from cmhbench.data.digest import captions_digest
from cmhbench.data.sources import SplitData
from cmhbench.errors import CmhbenchError
from cmhbench.evaluation.scoring import derived_fields, labels_digest
from cmhbench.features import cached_features, with_features
from cmhbench.method import HashingMethod, MethodSetup
from cmhbench.plugins.registry import Registry, get_registry
from cmhbench.request import CheckedRequest, RunRequest, check_request
from cmhbench.results import ResultStore, RunResult, compute_run_id, content_digest, provenance, run_definition
from cmhbench.results.codes_file import StoredCodes, codes_path, write_codes
from cmhbench.results.lock import acquire_run_lock, release_run_lock
from cmhbench.specs import DatasetSpec, MethodSpec
from cmhbench.suggest import unknown_name_message
from cmhbench.token_cache import cached_tokens
from cmhbench.train.checkpoint import seed_everything
from cmhbench.train.context import TrainContext, resolve_device
from cmhbench.train.precision import resolve_precision
from cmhbench.progress import TrainingProgress
from cmhbench.train.session import MethodStateError, TrainingSession

ENCODE_BATCH = 256


@dataclass
class RunOutcome:
    path: Path | None  # None for an artifact-only run (no codes, so no result file)
    result: dict[str, Any]
    skipped: bool
    #: what a run that trained leaves in memory (not in the result file), for callers that check a
    #: method (cmhbench.testing): the trained method, its query/retrieval codes, the training
    #: context and the dataset it ran on; None when the run was skipped
    trained: TrainedRun | None = None


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
    if registry.encoder(method.text_encoder).tower_of is not None:
        return choose_clip_towers(request, method, dataset_spec, dataset, registry)
    text = {"name": protocol.text_encoder, "weights": "none"}
    if dataset.text_kind not in registry.encoder(protocol.text_encoder).accepts:
        hint = ("; only CLIP methods (dchmt, mith) read captions" if dataset.text_kind == "captions" else "")
        raise CmhbenchError(f"{method.name} reads texts with {protocol.text_encoder}, which cannot read dataset "
                            f"{dataset.name}'s {dataset.text_kind} texts{hint}")
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


def choose_clip_towers(request: RunRequest, method: MethodSpec, dataset_spec: DatasetSpec, dataset: Dataset,
                       registry: Registry) -> dict[str, dict[str, Any]]:
    """Both towers of one CLIP for a method that reads captions: the image encoder asked for, else the
    protocol's CLIP size (the toy's tiny one), else the method's; its text tower; one weights file."""
    protocol = dataset_spec.protocol
    image_name = request.image_encoder or protocol.clip_encoder or method.image_encoder
    towers = [name for name in registry.names("encoder") if registry.encoder(name).tower_of == image_name]
    if not towers:
        sizes = sorted(registry.encoder(name).tower_of for name in registry.names("encoder")
                       if registry.encoder(name).tower_of)
        raise CmhbenchError(f"{method.name} reads images and captions with the two towers of one CLIP; "
                            f"--image-encoder {image_name} has no text tower (CLIP sizes: {', '.join(sizes)})")
    if dataset.captions is None:
        raise CmhbenchError(f"{method.name} reads captions with CLIP's text tower, and dataset {dataset.name} has none "
                            f"(its texts are {dataset.text_kind}); use a dataset with captions: toy, or one prepared "
                            "from the DCHMT files (mirflickr-dchmt, nuswide-dchmt, coco-dchmt)")
    if dataset.image_kind != "pixels":
        raise CmhbenchError(f"{method.name} fine-tunes CLIP's image tower on pixels; dataset {dataset.name} has image "
                            "features")
    # the protocol's weights are its own CLIP's (the toy's "toy" exist for clip-tiny only)
    own = protocol.clip_encoder is None or image_name == protocol.clip_encoder
    weights = request.image_weights or (protocol.clip_weights if own else "none")
    if weights not in ("none", "", "openai", "toy", "imagenet") and not Path(weights).expanduser().is_file():
        raise CmhbenchError(f"--image-weights {weights}: no such file (a CLIP weights file such as OpenAI's "
                            "ViT-B-32.pt, or openai, toy, none)")  # refused before any work, in every sweep job
    return {"image": {"name": image_name, "weights": weights}, "text": {"name": towers[0], "weights": weights}}


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
    #: sha256 of the image encoder's weights as training starts (set when they are built): pretrained
    #: weights cached on first use (the toy's toy-cnn) differ between machines, and so do the runs
    image_weights_sha256: str | None = None


def plan(request: RunRequest | CheckedRequest, registry: Registry | None = None, *,
         dataset: Dataset | None = None) -> RunPlan:
    """Fix a request's identity (checking it, unless it comes checked); cheap: opens the dataset
    (unless the caller has it open for these options already: a sweep's many jobs), trains nothing."""
    registry = registry or get_registry()
    checked = request if isinstance(request, CheckedRequest) else check_request(request, registry)
    request = checked.request
    resolve_device(request.device)  # --device cuda without a GPU fails here, before any work
    dataset = dataset or open_dataset(checked.dataset_spec, request.dataset_options)
    encoders = choose_encoders(request, checked.method_spec, checked.dataset_spec, dataset, registry)
    definition = run_definition(
        method=checked.method_spec.name, hyperparameters=checked.hparams, preset=checked.preset,
        dataset={**dataset_identity(dataset, reads_captions(encoders, registry)),
                 "options": dict(request.dataset_options)},
        protocol=checked.dataset_spec.protocol.as_dict(), bits=request.bits, seed=request.seed,
        epoch_override=checked.epoch_override, encoders=encoders, directions=list(request.directions),
        precision=None if request.precision == "auto" else request.precision)
    run_id = compute_run_id(definition)
    store = ResultStore(request.results_dir)
    return RunPlan(request=request, method_spec=checked.method_spec, dataset_spec=checked.dataset_spec,
                   dataset=dataset, hparams=checked.hparams, preset=checked.preset, encoders=encoders,
                   epoch_override=checked.epoch_override, definition=definition, run_id=run_id, store=store,
                   path=store.result_path(definition, run_id))


def reads_captions(encoders: Mapping[str, Mapping[str, Any]], registry: Registry) -> bool:
    return "captions" in registry.encoder(encoders["text"]["name"]).accepts


def dataset_identity(dataset: Dataset, with_captions: bool) -> dict[str, Any]:
    """What a run records of its dataset: its description and, for a run that reads captions, their
    digest (the toy derives its captions on opening, outside the file's content digest)."""
    described = dataset.describe()
    if with_captions:
        described["captions_sha256"] = captions_digest(dataset.captions)
    return described


def run(request: RunRequest | CheckedRequest, registry: Registry | None = None, *, hold_lock: bool = True,
        on_wait: Callable[[str], None] | None = None) -> RunOutcome:
    """Train, encode, evaluate and record one run. See the module docstring.

    The run's lock (cmhbench.results.lock) is held throughout, so an identical run started meanwhile
    waits and then finds this one's result instead of training again; ``on_wait`` is told when this
    call has to wait. ``hold_lock=False`` is for a caller that holds the lock already (a sweep worker).
    """
    registry = registry or get_registry()
    p = plan(request, registry)
    if p.path.exists() and not p.request.force:
        return RunOutcome(p.path, _finished_result(p), skipped=True)
    if not hold_lock:
        return execute(p, registry)
    try:
        lock = acquire_run_lock(p.store.root, p.run_id, timeout=0)
    except Timeout:
        if on_wait:
            on_wait(f"another process is running {p.run_id} (same definition); waiting for it to finish")
        lock = acquire_run_lock(p.store.root, p.run_id, timeout=-1)
    if p.path.exists() and not p.request.force:  # finished by another process since the check above
        release_run_lock(lock, True)
        return RunOutcome(p.path, _finished_result(p), skipped=True)
    try:
        return execute(p, registry)
    finally:
        release_run_lock(lock, p.path.exists())


def _finished_result(p: RunPlan) -> dict[str, Any]:
    """The result already at the run's path, refused in one line where it is not this run's."""
    result = p.store.read(p.path)
    if not isinstance(result, dict) or result.get("run_id") != p.run_id:
        raise CmhbenchError(f"{p.path} is where this run's result goes, but it holds no result of run {p.run_id}; "
                            "move it away, or give --force to run again and replace it")
    return result


def check_bits_limit(spec: MethodSpec, bits: int, image_dim: int, text_dim: int, dataset: str) -> None:
    """Refuse, before any training, a code length the method cannot give on these inputs."""
    limit = spec.max_bits(image_dim, text_dim) if spec.max_bits is not None else None
    if limit is not None and bits > limit:
        raise CmhbenchError(f"--bits {bits}: {spec.name} gives at most {limit} bits on {dataset} "
                            f"({image_dim}-d image and {text_dim}-d text inputs)")


def execute(p: RunPlan, registry: Registry) -> RunOutcome:
    """Train (resuming from the run's checkpoint when there is one), encode, score, write."""
    device = resolve_device(p.request.device)
    precision = resolve_precision(p.request.precision, p.method_spec.cuda_precision, device)
    progress = _progress_for(p)
    with progress.running():
        seed_everything(p.request.seed)
        dataset, image_encoder, text_encoder = build_encoders(p, registry, device, precision, progress)
        train = SplitData(dataset, "train", device)
        method = guarded(p, registry, "its constructor", create_method, p, dataset, train, image_encoder,
                         text_encoder, device)
        session = train_method(p, registry, method, train, device, precision, progress)
        if not method.produces_codes:  # an artifact-only run (e.g. DAPH stage 1): no result file
            shutil.rmtree(p.store.checkpoint_dir(p.run_id), ignore_errors=True)
            return artifact_outcome(p, method, session)
        codes, derived, timed = encode_and_score(p, registry, method, dataset, session, device, progress)
    # the codes first, then the result that names them: a result on disk always has its codes
    codes_record = write_codes(codes_path(p.path), stored_codes(p.request.bits, codes, dataset))
    result = result_record(p, registry, method, session, derived, codes_record, timed, device)
    try:
        p.store.write(p.path, result)
    except BaseException:
        if not p.path.exists():  # no result names these codes: leave nothing half-written behind
            codes_path(p.path).unlink(missing_ok=True)
        raise
    shutil.rmtree(p.store.checkpoint_dir(p.run_id), ignore_errors=True)
    return RunOutcome(p.path, result.to_dict(), skipped=False,
                      trained=TrainedRun(method, codes, session.ctx, dataset))


def split_labels(dataset: Dataset) -> dict[str, np.ndarray]:
    """The query and retrieval labels, in split order: what every metric is scored against."""
    return {split: dataset.labels[dataset.splits[split]] for split in ("query", "retrieval")}


def stored_codes(bits: int, codes: dict[str, dict[str, np.ndarray]], dataset: Dataset) -> StoredCodes:
    return StoredCodes(bits, codes, {split: dataset.splits[split] for split in codes}, split_labels(dataset))


def encode_and_score(p: RunPlan, registry: Registry, method: HashingMethod, dataset: Dataset,
                     session: TrainingSession, device: torch.device, progress: TrainingProgress):
    """(codes per split and modality, the fields derived from them (metrics, code statistics, evaluator
    version), encode and evaluate seconds)."""
    timed: dict[str, float] = {}
    with progress.phase("encoding query and retrieval splits"):
        started = time.perf_counter()
        codes = {split: guarded(p, registry, "encode_image/encode_text", encode_split, method,
                                SplitData(dataset, split, device), session.ctx)
                 for split in ("query", "retrieval")}
        _sync(device)
        timed["encode_seconds"] = time.perf_counter() - started
        guarded(p, registry, "encode_image/encode_text", check_batch_independence, method,
                SplitData(dataset, "retrieval", device), codes["retrieval"], session.ctx)
    with progress.phase("scoring"):
        started = time.perf_counter()
        labels = split_labels(dataset)
        derived = derived_fields(codes["query"], codes["retrieval"], labels["query"], labels["retrieval"],
                                 p.request.directions, device)
        timed["evaluate_seconds"] = time.perf_counter() - started
    return codes, derived, timed


#: items re-encoded as one batch of their own by every run, and the share of their bits that may differ
#: (a method's float arithmetic may flip a bit whose value is ~0 when the batch shape changes; bf16
#: rounds far more coarsely, so there only a gross dependence is refused)
BATCH_CHECK_ITEMS, BATCH_CHECK_TOLERANCE = 64, {"fp32": 0.01, "bf16": 0.1}


def check_batch_independence(method: HashingMethod, split: SplitData, codes: dict[str, np.ndarray],
                             ctx: TrainContext) -> None:
    """Refuse codes that depend on what else is in the batch (e.g. outputs centred per batch): a
    hash function gives an item its code whatever it is encoded with."""
    picks = np.random.default_rng(0).choice(len(split), size=min(BATCH_CHECK_ITEMS, len(split)), replace=False)
    batch = split.take(picks)
    with torch.inference_mode(), ctx.autocast():
        again = {"image": method.encode_image(batch.images), "text": method.encode_text(batch.texts)}
    for modality, values in again.items():
        differ = float((values.cpu().numpy() != codes[modality][picks]).mean())
        if differ > BATCH_CHECK_TOLERANCE[ctx.precision]:
            raise CmhbenchError(
                f"{modality} codes depend on the batch: {len(picks)} retrieval items encoded in a batch of their "
                f"own differ in {differ:.1%} of their bits from their codes in the full encoding; a method must "
                "encode each item independently (eval mode, statistics from training, not from the batch)")


def _progress_for(p: RunPlan) -> TrainingProgress:
    label = f"{p.method_spec.name} {p.request.dataset} {p.request.bits}b seed {p.request.seed}"
    return TrainingProgress(label, mode="quiet" if p.request.quiet else "auto", log_losses=p.request.log_losses)


def build_encoders(p: RunPlan, registry: Registry, device: torch.device, precision: str,
                   progress: TrainingProgress):
    """(dataset as trained on, image encoder or None, text encoder). A method that learns on
    frozen features gets the cached features of its encoder and an identity encoder over them."""
    dataset, image, text = p.dataset, p.encoders["image"], p.encoders["text"]
    image_encoder = None
    if image["name"] != NO_ENCODER:
        width = dataset.image_shape[0] if dataset.image_kind == "features" else None
        with progress.phase(f"image encoder {image['name']} ({image['weights']} weights)"):
            image_encoder = registry.encoder(image["name"]).create(image["weights"], width)
            p.image_weights_sha256 = state_digest(image_encoder)
    if image.get("frozen"):
        with progress.phase(f"{image['name']} features (extracted once, cached)", total=dataset.num_items) as advance:
            cache = cached_features(dataset, image["name"], image["weights"], image_encoder, device,
                                    init_seed=p.request.seed, precision=precision, on_items=advance)
        dataset = with_features(dataset, cache)
        image_encoder = registry.encoder("identity").create("none", dataset.image_shape[0])
        seed_everything(p.request.seed)
    text_encoder = registry.encoder(text["name"]).create(text["weights"], dataset.text_dim)
    if reads_captions(p.encoders, registry):
        with progress.phase(f"tokenizing {dataset.num_items} captions"):
            # the captions' digest is in the run's definition already: not a second pass over them
            dataset = with_tokens(dataset, cached_tokens(dataset.captions, text_encoder,
                                                         p.definition["dataset"]["captions_sha256"]))
    return dataset, image_encoder, text_encoder


def with_tokens(dataset: Dataset, tokens: np.ndarray) -> Dataset:
    """A view of ``dataset`` whose texts are a text tower's token ids (int N×L), fed like any text array
    (its ``text_kind`` "tokens" exists only in memory, never in a file)."""
    view = dataclasses.replace(dataset, texts=tokens, text_kind="tokens")
    view.__dict__.pop("_device_stores", None)
    return view


def state_digest(module: torch.nn.Module) -> str:
    """sha256 of a module's parameters and buffers, by name, in their stored order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def create_method(p: RunPlan, dataset: Dataset, train: SplitData, image_encoder, text_encoder,
                  device: torch.device) -> HashingMethod:
    image_dim = image_encoder.out_dim if image_encoder is not None else int(np.prod(dataset.image_shape))
    check_bits_limit(p.method_spec, p.request.bits, image_dim, text_encoder.out_dim, dataset.name)
    setup = MethodSetup(bits=p.request.bits, hparams=p.hparams, params=p.method_spec.typed(p.hparams),
                        image_encoder=image_encoder, text_encoder=text_encoder, num_train=len(train),
                        num_labels=dataset.num_labels, text_dim=dataset.text_dim, image_kind=dataset.image_kind,
                        text_kind=dataset.text_kind, device=device, seed=p.request.seed,
                        dataset_id=compute_run_id({"dataset": p.definition["dataset"], "encoders": p.encoders}))
    return p.method_spec.create(setup)


def guarded(p: RunPlan, registry: Registry, phase: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, with an exception a method raised turned into one line naming the method, its
    plugin and where it failed (CMHBENCH_TRACEBACK=1 prints the traceback too)."""
    try:
        return call(*args)
    except CmhbenchError:
        raise
    except Exception as exc:
        if isinstance(exc, MethodStateError):
            phase, exc = "state_dict() (saving a checkpoint)", exc.__cause__
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CmhbenchError(f"method {p.method_spec.name} (from {registry.origin('method', p.method_spec.name)}) "
                            f"failed in {phase}: {type(exc).__name__}: {detail}") from exc


def train_method(p: RunPlan, registry: Registry, method: HashingMethod, train: SplitData, device: torch.device,
                 precision: str, progress: TrainingProgress) -> TrainingSession:
    """Fit the method under a session that checkpoints, resumes and times it; refuse a run whose
    stages ran short or whose losses diverged."""
    checkpoint_dir = p.store.checkpoint_dir(p.run_id)
    if p.request.force and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    session = TrainingSession(
        device=device, seed=p.request.seed, checkpoint_dir=checkpoint_dir, run_id=p.run_id, progress=progress,
        precision=precision,
        epoch_override=p.epoch_override, schedule=published_schedule(p.method_spec, p.hparams))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    guarded(p, registry, "load_state_dict() (resuming from its checkpoint)", session.bind, method)
    def fed(count: int) -> None:
        session.items_fed += count
        progress.items(count)

    train.on_batch = fed
    guarded(p, registry, "fit", method.fit, train, session.ctx)
    train.on_batch = None
    _sync(device)
    session.stop_clock()  # a resumed run adds its earlier segments' time
    check_epochs_run(session, p.method_spec)
    check_losses_finite(session.history, p.method_spec)
    return session


def artifact_outcome(p: RunPlan, method: HashingMethod, session: TrainingSession) -> RunOutcome:
    """What an artifact-only run reports: what it saved, and how it trained."""
    return RunOutcome(None, {
        "run_id": p.run_id, "method": {"name": p.method_spec.name, "hyperparameters": p.hparams},
        "dataset": {"name": p.dataset.name}, "bits": p.request.bits, "seed": p.request.seed,
        "artifacts": method.artifacts(), "training": {"history": session.history},
        "timings": {"train_seconds": session.train_seconds_total}}, skipped=False)


def result_record(p: RunPlan, registry: Registry, method: HashingMethod, session: TrainingSession,
                  derived: dict[str, Any], codes_record: dict[str, Any], timed: dict[str, float],
                  device: torch.device) -> RunResult:
    """The result (docs/design.md, Results), its content digest included."""
    request, spec = p.request, p.method_spec
    labels = split_labels(p.dataset)
    result = RunResult(
        run_id=p.run_id,
        method={"name": spec.name, "description": spec.description, "citation": str(spec.citation),
                "plugin": registry.origin("method", spec.name), "hyperparameters": p.hparams, "preset": p.preset},
        # the dataset as planned (the run's identity), not the frozen-feature view trained on; its labels
        # pinned per split, so codes cannot be re-scored against other labels
        dataset={**dataset_identity(p.dataset, reads_captions(p.encoders, registry)),
                 "options": dict(request.dataset_options),
                 "labels_sha256": {split: labels_digest(values) for split, values in labels.items()}},
        protocol=p.dataset_spec.protocol.as_dict(),
        bits=request.bits, seed=request.seed, epoch_override=p.epoch_override,
        # the precision asked for is part of the identity (absent for auto): as the definition has it
        precision_requested=p.definition.get("precision"),
        encoders=p.encoders, metrics=derived["metrics"],
        training={"history": session.history, "resumed_from": session.resumed_from,
                  "precision": session.precision, "epochs": session.epochs_record()},
        codes=derived["codes"], diagnostics=method.diagnostics(), artifacts=method.artifacts(),
        timings={"train_seconds": session.train_seconds_total, **timed, "train_segments": session.segments,
                 "train_items_per_second": session.items_per_second(),
                 "checkpoint_seconds": session.checkpoint_seconds},
        peak_memory=provenance.peak_memory(device), codes_file=codes_record, evaluator=derived["evaluator"],
        environment={**provenance.environment(device), "image_weights_sha256": p.image_weights_sha256},
        git_commit=provenance.git_commit(),
        command=provenance.command_line(), rerun=provenance.rerun_command(request),
        created_utc=provenance.utc_now())
    result.content_sha256 = content_digest(result.to_dict())
    return result


def published_schedule(spec: MethodSpec, hparams: Mapping[str, Any]) -> dict[str, int] | None:
    """Each declared stage's published epoch count under these hyper-parameters (None when the
    method declares no schedule)."""
    if spec.stages is None:
        return None
    return {stage: int(hparams[key]) for stage, key in spec.stages.items()}


def check_epochs_run(session: TrainingSession, spec: MethodSpec) -> dict[str, dict[str, int]]:
    """The per-stage epoch record, refused when a stage stopped short of its budget (a result must
    not claim a budget its training did not run)."""
    record = session.epochs_record()
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
