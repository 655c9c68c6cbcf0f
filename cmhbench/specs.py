"""The frozen descriptions that plugins register: methods, datasets, encoders, protocols.

A spec is data plus a factory. The core never imports a method, dataset or encoder module by name;
it only sees the specs that plugins hand back through the hooks in `cmhbench.plugins.hookspecs`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for annotations only, to keep this module dependency-free
    from cmhbench.data.dataset import Dataset
    from cmhbench.encoders.base import Encoder
    from cmhbench.method import HashingMethod, MethodSetup


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


METHOD_INPUTS = ("raw", "features", "direct")


class HyperParameters:
    """Read-only attribute access to a hyper-parameter mapping: what a method of a spec that
    declares no ``params`` dataclass gets as ``self.hp``."""

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle probe for these before __init__ has run
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no hyper-parameter {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("hyper-parameters are read-only")

    def __repr__(self) -> str:
        return f"HyperParameters({self._values!r})"

    def __reduce__(self):
        return HyperParameters, (self._values,)


def params_defaults(params: type) -> dict[str, Any]:
    """The defaults a ``params`` dataclass declares: every field must have one."""
    if not dataclasses.is_dataclass(params):
        raise ValueError(f"params {params!r}: expected a dataclass whose fields are the defaults")
    out = {}
    for f in dataclasses.fields(params):
        if f.default is dataclasses.MISSING:
            raise ValueError(f"params {params.__name__}.{f.name}: every field needs its published default")
        out[f.name] = f.default
    return out


def params_choices(params: type) -> dict[str, tuple[str, ...]]:
    """The allowed values of every field annotated ``Literal[...]``."""
    hints = typing.get_type_hints(params)
    return {name: tuple(typing.get_args(hint)) for name, hint in hints.items()
            if typing.get_origin(hint) is typing.Literal}


class lazy:
    """A factory that imports its target only when first called, so that registering a spec (and
    every command that only lists specs) never imports torch. ``args`` are passed to the target
    first: ``lazy("pkg.backbones:factory", "alexnet")`` calls ``factory("alexnet")`` and then the
    callable that returns."""

    def __init__(self, target: str, *args: Any):
        module, _, attribute = target.partition(":")
        if not module or not attribute:
            raise ValueError(f"lazy target {target!r}: expected 'package.module:attribute'")
        self.target, self.args, self._resolved = target, args, None

    def findable(self) -> bool:
        """Whether the target's module can be found, without importing it (its parent packages are)."""
        import importlib.util

        try:
            return importlib.util.find_spec(self.target.partition(":")[0]) is not None
        except (ImportError, ValueError):
            return False

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            import importlib

            from cmhbench.errors import CmhbenchError

            module, _, attribute = self.target.partition(":")
            try:
                obj = getattr(importlib.import_module(module), attribute)
                self._resolved = obj(*self.args) if self.args else obj
            except (ImportError, AttributeError) as exc:  # a missing dependency, a typo in the target
                raise CmhbenchError(f"cannot load {self.target}: {type(exc).__name__}: {exc}") from None
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r}{''.join(', ' + repr(a) for a in self.args)})"


@dataclass(frozen=True)
class Citation:
    """Where a method, dataset or encoder was published."""

    title: str
    venue: str
    year: int
    authors: str = ""
    url: str = ""  # where the paper can be read (http or https)

    def __post_init__(self) -> None:
        _check_url("citation url", self.url)

    def __str__(self) -> str:
        # "Lin et al." already ends in a full stop: no "et al.."
        who = f"{self.authors.rstrip('.')}. " if self.authors else ""
        return f"{who}{self.title.rstrip('.')}. {self.venue} {self.year}."


def _check_url(what: str, url: str) -> None:
    """Links end up on the leaderboard: only http(s), so that a plugin cannot place a javascript: link."""
    if url and not url.startswith(("https://", "http://")):
        raise ValueError(f"{what} {url!r}: expected an http:// or https:// address")


@dataclass(frozen=True)
class ReportedResult:
    """One number a method's paper reports, exactly as printed, with where it is printed.

    The leaderboard shows these as "reported" rows beside the reproduced runs of the same dataset
    (never averaged with them) and the difference between the two. Only numbers read off the paper
    belong here: a figure that cannot be sourced is left out, never estimated.
    """

    dataset: str  # the cmhbench dataset name the paper's experiment corresponds to (mirflickr, iapr, ...)
    bits: int
    direction: str  # i2t or t2i
    value: float
    source: str  # paper and table, e.g. "DCMH (CVPR 2017), Table 3"
    setting: str = ""  # what differs from the suite's protocol: split, backbone, features
    metric: str = "map"
    #: which "mAP" the paper's code computed: "map" (cmhbench's own), a variant's name
    #: (cmhbench.evaluation.variants: "dcmh_map", "daph_map", "dchmt_map", ...), or None where unknown;
    #: the board's Δ vs paper compares our score under the same definition, or says it cannot
    definition: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("i2t", "t2i", "i2i", "t2t"):
            raise ValueError(f"reported result: direction must be i2t, t2i, i2i or t2t, got {self.direction!r}")
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"reported result: value {self.value!r} is not in [0, 1]")
        from cmhbench.evaluation.variant_names import DEFINITIONS

        if self.definition is not None and self.definition not in DEFINITIONS:
            raise ValueError(f"reported result: definition {self.definition!r} is none of {', '.join(DEFINITIONS)}")


def reported_table(dataset: str, source: str, setting: str, values: Mapping[str, Sequence[float]],
                   bits: Sequence[int] = (16, 32, 64), definition: str | None = None) -> tuple[ReportedResult, ...]:
    """A paper table's row for one dataset: ``values`` maps a direction to its numbers, one per code
    length of ``bits``, computed under the mAP ``definition`` (see `ReportedResult`)."""
    out = []
    for direction, numbers in values.items():
        if len(numbers) != len(bits):
            raise ValueError(f"reported {dataset} {direction} ({source}): {len(numbers)} values for bits {tuple(bits)}")
        out += [ReportedResult(dataset, b, direction, v, source, setting, definition=definition)
                for b, v in zip(bits, numbers, strict=True)]
    return tuple(out)


@dataclass(frozen=True)
class Protocol:
    """A named, versioned evaluation protocol for one dataset.

    The splits themselves live in the dataset file (fixed index arrays); the protocol names them and
    fixes everything else a result depends on: code lengths, seeds, encoders and their weights, and,
    for quick protocols such as the toy one, an epoch budget that overrides each method's published
    epoch count (``None`` keeps the published schedule) and the name of the method preset to apply
    where a method defines one (budget protocols use a ``quick`` preset: published schedules assume
    hundreds of epochs from pretrained backbones and do not move in a CPU minute from scratch).
    """

    name: str
    version: int
    bits: tuple[int, ...] = (16, 32, 64)
    seeds: tuple[int, ...] = (0,)
    image_encoder: str | None = None
    image_weights: str = "imagenet"
    text_encoder: str = "identity"
    epochs: int | None = None
    preset: str | None = None
    #: the weights of any image encoder other than the protocol's own (None: ``image_weights``);
    #: toy's "toy" weights exist for toy-cnn only, so another backbone there starts untrained
    other_image_weights: str | None = None
    #: the CLIP a CLIP method runs with here (None: the method's own, ViT-B/32) and its weights: the
    #: toy runs them on a tiny CLIP pretrained on toy pairs ("toy"); another CLIP size starts untrained. Not in ``as_dict``: the encoders they pick
    #: are recorded in every run, and adding them moved no existing run
    clip_encoder: str | None = None
    clip_weights: str = "openai"

    def as_dict(self) -> dict[str, Any]:
        extra = {"other_image_weights": self.other_image_weights} if self.other_image_weights else {}
        return {**extra,
            "name": self.name,
            "version": self.version,
            "bits": list(self.bits),
            "seeds": list(self.seeds),
            "image_encoder": self.image_encoder,
            "image_weights": self.image_weights,
            "text_encoder": self.text_encoder,
            "epochs": self.epochs,
            "preset": self.preset,
        }


@dataclass(frozen=True)
class MethodSpec:
    """A hashing method: name, citation, published defaults and a factory.

    ``create(setup)`` builds an untrained `HashingMethod`. ``defaults`` are the published
    hyper-parameters; ``presets`` are named alternative bundles (e.g. the official code's settings
    where they differ from the paper's); ``choices`` lists the allowed values of hyper-parameters
    that name a variant (e.g. ``{"form": ("paper", "copied")}``), so that a wrong value is refused
    before any data is read. ``image_encoder`` is the backbone the paper used (or our
    stand-in for it) when the dataset supplies pixels.

    ``stages`` declares the published schedule: each training stage's name and the
    hyper-parameter that holds its published epoch count (``{"proxies": "proxy_epochs",
    "hashing": "epochs"}``). The harness scales every declared stage in proportion to the run's
    epoch budget and records the epochs run per stage. ``{}`` declares a closed-form method (no
    epochs to budget); ``None`` (a plugin that declares nothing) gives every stage the budget as
    its epoch count. ``cuda_precision`` is what ``--precision auto`` means on a GPU. ``max_bits``
    gives the longest code the method can produce from its inputs' widths (a projection method
    cannot give more bits than its input has dimensions); longer requests are refused before training.
    """

    name: str
    description: str
    citation: Citation
    create: Callable[[MethodSetup], HashingMethod]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    image_encoder: str = "alexnet"
    text_encoder: str = "identity"
    #: "raw": the method gets pixels and trains its encoder; "features": it learns on fixed feature
    #: vectors, which the runner extracts once with a frozen encoder and caches (shallow methods);
    #: "direct": no backbone: the method takes the dataset's images as stored (pixels or features),
    #: no encoder is built (``MethodSetup.image_encoder`` is None) and the result records "none".
    input: str = "raw"
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    stages: Mapping[str, str] | None = None
    cuda_precision: str = "bf16"
    #: the longest code the method can give, from its inputs' widths (image features, text):
    #: checked before training; None for no limit
    max_bits: Callable[[int, int], int] | None = None
    #: the numbers the method's paper reports, each with its table (see ReportedResult)
    reported: tuple[ReportedResult, ...] = ()
    #: the authors' code (http or https), linked from the leaderboard beside the paper
    code_url: str = ""
    #: a dataclass whose fields are the published hyper-parameters (its defaults become
    #: ``defaults``, its ``Literal`` fields ``choices``); the method gets an instance as ``self.hp``
    params: type | None = None

    def __post_init__(self) -> None:
        _check_url(f"method {self.name!r}: code_url", self.code_url)
        if self.params is not None:
            if self.defaults:
                raise ValueError(f"method {self.name!r}: give params or defaults, not both")
            object.__setattr__(self, "defaults", params_defaults(self.params))
            object.__setattr__(self, "choices", {**params_choices(self.params), **self.choices})
        object.__setattr__(self, "defaults", _frozen(self.defaults))
        if self.stages is not None:
            object.__setattr__(self, "stages", _frozen(self.stages))
            for stage, key in self.stages.items():
                value = self.defaults.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"method {self.name!r}: stage {stage!r} names hyper-parameter {key!r}, "
                                     f"whose default {value!r} is not a positive epoch count")
        if self.input not in METHOD_INPUTS:
            raise ValueError(f"method {self.name!r}: input must be one of {METHOD_INPUTS}, got {self.input!r}")
        if self.cuda_precision not in ("bf16", "fp32"):
            raise ValueError(f"method {self.name!r}: cuda_precision must be bf16 or fp32")
        object.__setattr__(self, "choices", MappingProxyType({k: tuple(v) for k, v in self.choices.items()}))
        for key, allowed in self.choices.items():  # a plugin's own inconsistency, caught at registration
            if self.defaults.get(key) not in allowed:
                raise ValueError(f"method {self.name!r}: default {key}={self.defaults.get(key)!r} "
                                 f"is not among its choices {allowed}")
        object.__setattr__(
            self, "presets", MappingProxyType({k: _frozen(v) for k, v in self.presets.items()})
        )
        for preset, values in self.presets.items():  # a plugin's own typo, caught at registration
            unknown = sorted(set(values) - set(self.defaults))
            if unknown:
                raise ValueError(f"method {self.name!r}: preset {preset!r} sets {unknown[0]!r}, which is not one of "
                                 "its hyper-parameters")

    def typed(self, values: Mapping[str, Any]) -> Any:
        """Resolved hyper-parameters as the method reads them: an instance of ``params``, or
        attribute access to the mapping for a spec without one."""
        return self.params(**values) if self.params is not None else HyperParameters(values)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: how to open its canonical file, and the protocol it is scored under.

    ``open(options)`` returns a `Dataset`; it raises `CmhbenchError` with the exact prepare
    command when the prepared file is missing. ``options`` are dataset-specific key/values (the toy
    dataset's size and resolution, for instance); ``option_defaults`` lists the accepted ones.
    """

    name: str
    description: str
    citation: Citation | None
    protocol: Protocol
    open: Callable[[Mapping[str, Any]], Dataset]
    option_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: How `cmhbench data prepare` builds it from the user's files (a DatasetProfile); None for
    #: generated datasets such as toy.
    profile: Any = None
    #: ``label_pins(version, options)``: the digest of each split's labels in the canonical preparation
    #: (cmhbench.results.label_pins), or None where unknown; what refuses codes scored on other labels
    label_pins: Callable[[str, Mapping[str, Any]], Mapping[str, str] | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "option_defaults", _frozen(self.option_defaults))


@dataclass(frozen=True)
class EncoderSpec:
    """Raw modality input -> feature vector.

    ``create(weights, input_dim)`` builds an `Encoder` module; ``weights`` is ``"none"``,
    ``"imagenet"`` (the library's published weights, downloaded by torchvision on first use) or a
    path to a local state-dict file. ``modality`` is ``"image"``, ``"text"`` or ``"any"``.
    ``accepts`` names the stored kinds it reads: ``pixels``, ``features``, ``bow`` or ``captions``
    (a text tower that tokenizes captions: the runner gives it the token ids its ``tokenize`` makes).
    """

    name: str
    description: str
    modality: str
    create: Callable[[str, int | None], Encoder]
    citation: Citation | None = None
    accepts: tuple[str, ...] = ("pixels",)
    #: for a text tower that is part of one model with an image encoder (CLIP): that encoder's name.
    #: A method that names such a tower gets the tower of whatever image encoder the run uses, built
    #: from the same weights file
    tower_of: str | None = None
