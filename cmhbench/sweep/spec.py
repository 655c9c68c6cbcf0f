"""A sweep: a grid of runs (methods × datasets × code lengths × seeds), from options or a file.

A sweep file is YAML (``.yaml``/``.yml``) or TOML (``.toml``) with the same keys as the command's
options; per-method hyper-parameters and per-dataset options are mappings::

    methods: [dcmh, ssah]
    datasets: [toy, wiki]
    bits: [16, 32]          # default: each dataset's protocol code lengths
    seeds: [0, 1, 2]        # default: each dataset's protocol seeds
    epochs: 5               # optional override of every method's schedule
    hparams: {dcmh: {lr_start: 1.0}}
    dataset_options: {toy: {size: 400}}
    image_encoders: {toy: alexnet}   # per dataset: the image encoder (feature methods on pixels)
    directions: [i2t, t2i, i2i]      # default i2t, t2i
    results: results        # the results folder (shared by every machine of the sweep)

Expanding a sweep fixes each job's run_id (the same hash `cmhbench run` uses), so a job whose
result exists anywhere in the results folder is recognised as done.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from cmhbench.errors import CmhbenchError
from cmhbench.plugins.registry import Registry, get_registry
from cmhbench.evaluation import check_directions
from cmhbench.runner import RunRequest, plan

SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FILE_KEYS = {"name", "methods", "datasets", "bits", "seeds", "epochs", "preset", "hparams",
             "dataset_options", "image_encoders", "directions", "device", "precision", "results"}


@dataclass
class SweepSpec:
    methods: list[str]
    datasets: list[str]
    bits: list[int] | None = None
    seeds: list[int] | None = None
    epochs: int | None = None
    preset: str | None = None
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    image_encoders: dict[str, str] = field(default_factory=dict)
    directions: list[str] = field(default_factory=lambda: ["i2t", "t2i"])
    device: str = "auto"
    precision: str = "auto"
    results: str = "results"
    name: str | None = None


@dataclass
class Job:
    """One run of the grid: the request a worker runs, and the identity it is tracked by."""

    request: dict[str, Any]
    run_id: str
    result_path: str

    @property
    def label(self) -> str:
        r = self.request
        return f"{r['method']}/{r['dataset']}/{r['bits']}b/seed{r['seed']}"

    def run_request(self, **changes: Any) -> RunRequest:
        return RunRequest(**{**self.request, **changes})


MAX_SWEEP_FILE_BYTES = 1024**2


def _load_yaml(text: str) -> Any:
    """yaml.safe_load without aliases: ``*name`` repeats a node, and a few nested ones (an alias
    bomb) expand to gigabytes; a sweep file never needs them."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def fetch_alias(self):
            raise yaml.YAMLError(f"line {self.get_mark().line + 1}: aliases (*name) are not accepted in a sweep file")

    return yaml.load(text, Loader=NoAliases)


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a YAML or TOML sweep file; every problem names the file and the key."""
    path = Path(path)
    if path.is_dir():
        raise CmhbenchError(f"sweep file {path} is a folder; expected a .yaml, .yml or .toml file")
    if not path.is_file():
        raise CmhbenchError(f"sweep file {path} does not exist")
    if path.stat().st_size > MAX_SWEEP_FILE_BYTES:
        raise CmhbenchError(f"sweep file {path}: {path.stat().st_size:,} bytes, more than a sweep file can be "
                            f"({MAX_SWEEP_FILE_BYTES:,})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CmhbenchError(f"sweep file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        if path.suffix == ".toml":
            content = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            content = _load_yaml(text)
        else:
            raise CmhbenchError(f"sweep file {path}: expected a .toml, .yaml or .yml file")
    except RecursionError:
        raise CmhbenchError(f"sweep file {path}: nested too deeply to be a sweep file") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CmhbenchError(f"sweep file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError, without importing yaml when it is not needed
        if type(exc).__module__.startswith("yaml"):
            raise CmhbenchError(f"sweep file {path} is not valid YAML: {exc}") from None
        raise
    if not isinstance(content, dict):
        raise CmhbenchError(f"sweep file {path}: expected a mapping of keys ({', '.join(sorted(FILE_KEYS))})")
    return spec_from_mapping(content, f"sweep file {path}")


def _names(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CmhbenchError(f"{where}: key {key!r} must be a non-empty list of names")
    return value


def _ints(value: Any, key: str, where: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    try:
        out = [_integer(v) for v in value]
    except (TypeError, ValueError):
        raise CmhbenchError(f"{where}: key {key!r} must be a list of integers, got {value!r}") from None
    if not out:
        raise CmhbenchError(f"{where}: key {key!r} is empty")
    return out


def _integer(value: Any) -> int:
    """An int, or a string of one (from the command line); never a bool (YAML's `true` is one to
    Python) or a float that int() would truncate."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(value)
    return int(value)


def _text(content: Mapping[str, Any], key: str, default: str | None, where: str) -> str | None:
    value = content.get(key, default)
    if value is not None and not isinstance(value, str):
        raise CmhbenchError(f"{where}: key {key!r} must be a string, got {value!r}")
    return value


def _sweep_name(value: Any, where: str) -> str | None:
    # the manifest is written as RESULTS/.sweeps/NAME.json: a name must not be a path
    if value is not None and not (isinstance(value, str) and SWEEP_NAME.fullmatch(value)):
        raise CmhbenchError(f"{where}: key 'name' must be letters, digits, '.', '_' or '-' (at most 64, "
                            f"not starting with '.' or '-'), got {value!r}")
    return value


def _nested(value: Any, key: str, where: str) -> dict[str, dict[str, Any]]:
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise CmhbenchError(f"{where}: key {key!r} must map a name to a mapping of settings, "
                            f"e.g. {key}: {{toy: {{size: 400}}}}")
    return {str(k): dict(v) for k, v in value.items()}


def _encoders(value: Any, where: str) -> dict[str, str]:
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CmhbenchError(f"{where}: key 'image_encoders' must map a dataset to an encoder name, "
                            "e.g. image_encoders: {toy: alexnet}")
    return {str(k): v for k, v in value.items()}


def _directions(value: Any, where: str) -> list[str]:
    names = _names(value, "directions", where)
    check_directions(names, f"{where}: key 'directions' {names!r}")
    return names


def spec_from_mapping(content: Mapping[str, Any], where: str) -> SweepSpec:
    unknown = set(content) - FILE_KEYS
    if unknown:
        raise CmhbenchError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(FILE_KEYS))}")
    for required in ("methods", "datasets"):
        if required not in content:
            raise CmhbenchError(f"{where}: key {required!r} is missing")
    epochs = content.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise CmhbenchError(f"{where}: key 'epochs' must be a positive integer, got {epochs!r}")
    return SweepSpec(
        methods=_names(content["methods"], "methods", where),
        datasets=_names(content["datasets"], "datasets", where),
        bits=_ints(content.get("bits"), "bits", where),
        seeds=_ints(content.get("seeds"), "seeds", where),
        epochs=epochs,
        preset=_text(content, "preset", None, where),
        hparams=_nested(content.get("hparams"), "hparams", where),
        dataset_options=_nested(content.get("dataset_options"), "dataset_options", where),
        image_encoders=_encoders(content.get("image_encoders"), where),
        directions=_directions(content.get("directions", ["i2t", "t2i"]), where),
        device=_text(content, "device", "auto", where),
        precision=_text(content, "precision", "auto", where),
        results=_text(content, "results", "results", where),
        name=_sweep_name(content.get("name"), where),
    )


def _requests(spec: SweepSpec, registry: Registry) -> Iterator[RunRequest]:
    """The grid's run requests in a fixed order: datasets, methods, code lengths, seeds."""
    for dataset in spec.datasets:
        protocol = registry.dataset(dataset).protocol
        for method in spec.methods:
            for bits in spec.bits or list(protocol.bits):
                for seed in spec.seeds or list(protocol.seeds):
                    yield RunRequest(
                        method=method, dataset=dataset, bits=bits, seed=seed, epochs=spec.epochs,
                        device=spec.device, precision=spec.precision,
                        hparams=dict(spec.hparams.get(method, {})), preset=spec.preset,
                        dataset_options=dict(spec.dataset_options.get(dataset, {})),
                        image_encoder=spec.image_encoders.get(dataset), directions=tuple(spec.directions),
                        results_dir=str(spec.results), quiet=True)


def expand(spec: SweepSpec, registry: Registry | None = None) -> list[Job]:
    """Every job of the grid in a fixed order, with its run_id; unknown names fail before any work."""
    registry = registry or get_registry()
    for method in spec.methods:
        registry.method(method)
    for dataset in spec.datasets:
        registry.dataset(dataset)
    for name in spec.hparams:
        if name not in spec.methods:
            raise CmhbenchError(f"hparams given for method {name!r}, which is not in the sweep's methods")
    for name in [*spec.dataset_options, *spec.image_encoders]:
        if name not in spec.datasets:
            raise CmhbenchError(f"dataset_options or image_encoders given for {name!r}, which is not in "
                                "the sweep's datasets")
    jobs: list[Job] = []
    opened: dict[str, Any] = {}  # each dataset opened once (its options are the same for every job)
    for request in _requests(spec, registry):
        p = plan(request, registry, dataset=opened.get(request.dataset))
        opened[request.dataset] = p.dataset
        fields = asdict(request)
        fields["directions"] = list(fields["directions"])
        jobs.append(Job(request=fields, run_id=p.run_id, result_path=str(p.path)))
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.run_id, job)  # a grid may name one run twice (e.g. identity encoders)
    return list(seen.values())
