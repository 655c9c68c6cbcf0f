"""`cnnf`: CNN-F (VGG-F) up to fc7, loadable from MatConvNet's ``imagenet-vgg-f.mat``.

CNN-F is from Chatfield, Simonyan, Vedaldi and Zisserman, "Return of the Devil in the Details:
Delving Deep into Convolutional Nets", BMVC 2014. DCMH (CVPR 2017) and SSAH (CVPR 2018) use it
through MatConvNet's ``imagenet-vgg-f.mat`` and attach their hash heads to the 4096-d fc7 feature
(after its ReLU), which is what this encoder returns. Torchvision does not ship it, so ImageNet
weights come only from that file (``--image-weights /path/to/imagenet-vgg-f.mat``).

Layers (no dropout): conv1 64×11×11/4, ReLU, LRN, max-pool 3×3/2 | conv2 256×5×5 pad 2, ReLU, LRN,
max-pool 3×3/2 | conv3, conv4, conv5 256×3×3 pad 1, each with a ReLU | max-pool 3×3/2 | fc6 (a 6×6
convolution to 4096), ReLU | fc7 (1×1 convolution to 4096), ReLU. Anything after relu7 in the file
(fc8, the softmax) is ignored.

MatConvNet conventions relied on (``simplenn`` format, read with ``scipy.io.loadmat``):

* ``net.layers`` is a cell array of structs with a ``type`` ('conv', 'relu', 'normalize' or
  'lrn', 'pool', 'softmax', ...). Conv layers hold ``weights = {filters, biases}`` (old files:
  ``filters`` and ``biases`` fields). Filters are H×W×In×Out (height first, as MATLAB images are
  H×W×C); torch wants Out×In×H×W, hence ``transpose(3, 2, 0, 1)``. Like torch (and Caffe),
  ``vl_nnconv`` computes a cross-correlation, so the kernels are not flipped. MATLAB drops
  singleton dimensions (and ``squeeze_me`` drops the rest): fc7's 1×1×4096×4096 filter arrives as
  4096×4096 and is reshaped back.
* ``stride`` is a scalar or [Y X]; ``pad`` is a scalar or [TOP BOTTOM LEFT RIGHT] and may be
  asymmetric. Conv padding is with zeros. Max pooling (``vl_nnpool``) clips each window to the
  input, i.e. pads with -inf; torch's own padding must be symmetric, so asymmetric pads are
  applied with ``F.pad(..., value=-inf)`` before an unpadded ``max_pool2d``. Output size is
  floor((n + pad_a + pad_b - k) / stride) + 1, as in torch with ``ceil_mode=False``.
  CNN-F's pool1 has pad [0 1 0 1]: one extra row at the bottom and one column at the right.
* LRN (``vl_nnnormalize``), ``param = [N KAPPA ALPHA BETA]``:
  y_k = x_k / (KAPPA + ALPHA * sum_{j in G(k)} x_j^2)^BETA, with
  G(k) = [k - floor((N-1)/2), k + ceil((N-1)/2)] clipped to the channels. ALPHA is *not* divided
  by N. ``torch.nn.functional.local_response_norm(x, size, alpha, beta, k)`` divides its alpha by
  ``size`` (it averages the squares, zero-padding the channel axis), so we pass
  ``alpha = ALPHA * N``. For odd N both windows are [k - (N-1)/2, k + (N-1)/2]; for even N they
  differ, so even N is refused (CNN-F uses N = 5; its file holds [5 2 1e-4 0.75], Caffe's
  local_size 5, k 2, alpha 5e-4 converted to MatConvNet's convention).
* The mean is ``meta.normalization.averageImage`` (older files: ``normalization.averageImage``),
  a 224×224×3 image or an RGB 3-vector in pixel units (0..255); it is subtracted and nothing is
  divided. Files saved as a single ``net`` struct are unwrapped.

Input: uint8 N×H×W×3 RGB pixels on the device. Images that are not 224×224 (the toy dataset's
32-64 px images, for instance) are resized bilinearly to 224×224 on the device, as floats in
0..255 (not rounded back to integers), before the mean is subtracted; DCMH's MATLAB code likewise
``imresize``s to 224×224 first. Shrinking is antialiased, as MATLAB's ``imresize`` does.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cmhbench.encoders.base import Encoder, check_pixels
from cmhbench.errors import CmhbenchError

INPUT_SIZE = 224
#: Output channels of conv1..conv5, fc6, fc7.
CNNF_WIDTHS = (64, 256, 256, 256, 256, 4096, 4096)
IMAGENET_MEAN_PIXELS = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


# ---- the architecture, as data -------------------------------------------------------------------

@dataclass(frozen=True)
class Conv:
    name: str
    kernel: tuple[int, int]  # (height, width)
    in_channels: int
    out_channels: int
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # MatConvNet order: top, bottom, left, right

    @property
    def filter_shape(self) -> tuple[int, int, int, int]:
        """MatConvNet's H×W×In×Out."""
        return (*self.kernel, self.in_channels, self.out_channels)


@dataclass(frozen=True)
class Relu:
    name: str


@dataclass(frozen=True)
class Lrn:
    """MatConvNet's ``param = [N KAPPA ALPHA BETA]``; the defaults are imagenet-vgg-f.mat's."""

    name: str
    size: int = 5
    kappa: float = 2.0
    alpha: float = 1e-4
    beta: float = 0.75


@dataclass(frozen=True)
class MaxPool:
    name: str
    pool: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (2, 2)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right


Layer = Union[Conv, Relu, Lrn, MaxPool]


def cnnf_layout(widths: tuple[int, ...] = CNNF_WIDTHS) -> tuple[Layer, ...]:
    """CNN-F up to relu7 with MatConvNet's hyper-parameters. ``widths`` (conv1..conv5, fc6, fc7)
    are only changed by tests, which check the loader on a narrow copy of the same architecture."""
    c1, c2, c3, c4, c5, f6, f7 = widths
    return (
        Conv("conv1", (11, 11), 3, c1, stride=(4, 4)), Relu("relu1"), Lrn("norm1"),
        MaxPool("pool1", pad=(0, 1, 0, 1)),
        Conv("conv2", (5, 5), c1, c2, pad=(2, 2, 2, 2)), Relu("relu2"), Lrn("norm2"), MaxPool("pool2"),
        Conv("conv3", (3, 3), c2, c3, pad=(1, 1, 1, 1)), Relu("relu3"),
        Conv("conv4", (3, 3), c3, c4, pad=(1, 1, 1, 1)), Relu("relu4"),
        Conv("conv5", (3, 3), c4, c5, pad=(1, 1, 1, 1)), Relu("relu5"), MaxPool("pool5"),
        Conv("fc6", (6, 6), c5, f6), Relu("relu6"),
        Conv("fc7", (1, 1), f6, f7), Relu("relu7"),
    )


# ---- torch modules with MatConvNet semantics -----------------------------------------------------

class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d with MatConvNet's zero padding [top bottom left right], which may be asymmetric."""

    def __init__(self, layer: Conv):
        top, bottom, left, right = layer.pad
        symmetric = top == bottom and left == right
        super().__init__(layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride,
                         padding=(top, left) if symmetric else 0)
        # torch pads symmetrically itself (faster); only an asymmetric pad is applied by hand
        self.extra_pad = None if symmetric else (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)


class MatConvNetLrn(nn.Module):
    """``vl_nnnormalize``: x / (kappa + alpha * sum of the N neighbouring channels' x^2)^beta."""

    def __init__(self, layer: Lrn):
        super().__init__()
        self.size, self.kappa, self.alpha, self.beta = layer.size, layer.kappa, layer.alpha, layer.beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch averages the squares over the window (divides alpha by size); MatConvNet sums them
        return F.local_response_norm(x, self.size, alpha=self.alpha * self.size, beta=self.beta, k=self.kappa)

    def extra_repr(self) -> str:
        return f"N={self.size}, kappa={self.kappa}, alpha={self.alpha} (not divided by N), beta={self.beta}"


class PaddedMaxPool2d(nn.Module):
    """``vl_nnpool`` max pooling: windows clipped to the input, i.e. padding with -inf."""

    def __init__(self, layer: MaxPool):
        super().__init__()
        self.pool, self.stride = layer.pool, layer.stride
        top, bottom, left, right = layer.pad
        self.pad = (left, right, top, bottom)  # F.pad's order: last axis first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return F.max_pool2d(x, self.pool, self.stride)

    def extra_repr(self) -> str:
        return f"pool={self.pool}, stride={self.stride}, pad(l,r,t,b)={self.pad}"


def build_body(layout: tuple[Layer, ...]) -> nn.Sequential:
    """Torch modules named after the MatConvNet layers (state-dict keys such as conv1.weight)."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for layer in layout:
        if isinstance(layer, Conv):
            modules[layer.name] = PaddedConv2d(layer)
        elif isinstance(layer, Relu):
            modules[layer.name] = nn.ReLU(inplace=True)
        elif isinstance(layer, Lrn):
            modules[layer.name] = MatConvNetLrn(layer)
        else:
            modules[layer.name] = PaddedMaxPool2d(layer)
    return nn.Sequential(modules)


# ---- the encoder ---------------------------------------------------------------------------------

class CnnfEncoder(Encoder):
    """uint8 N×H×W×3 -> float, resized to 224×224, minus the mean -> CNN-F -> N×4096 (relu7)."""

    def __init__(self, body: nn.Sequential, mean: torch.Tensor, out_dim: int):
        super().__init__()
        self.body = body
        self.out_dim = int(out_dim)
        self.register_buffer("mean", mean)  # 1×3×1×1 (a colour) or 1×3×224×224 (an image)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        check_pixels(raw)
        pixels = raw.permute(0, 3, 1, 2).float()
        if tuple(pixels.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            # fc6 is a 6×6 filter bank: it needs pool5's 6×6 map, which only a 224 input gives.
            # antialias only matters when shrinking (then it filters like MATLAB's imresize does);
            # enlarging, as for the toy images, is plain bilinear interpolation
            pixels = F.interpolate(pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.body(pixels - self.mean).flatten(1)


def random_cnnf() -> CnnfEncoder:
    """PyTorch's default initialisation, with the ImageNet mean colour."""
    mean = torch.tensor(IMAGENET_MEAN_PIXELS, dtype=torch.float32).view(1, 3, 1, 1)
    return CnnfEncoder(build_body(cnnf_layout()), mean, CNNF_WIDTHS[-1])


def create_cnnf(weights: str, input_dim: int | None = None) -> CnnfEncoder:
    """``weights``: 'none' (random), or the path of MatConvNet's imagenet-vgg-f.mat."""
    if weights in ("none", ""):
        return random_cnnf()
    if weights == "imagenet":
        raise CmhbenchError(
            "torchvision does not ship CNN-F, so --image-weights imagenet cannot fetch it; download "
            "MatConvNet's imagenet-vgg-f.mat (the file the DCMH and SSAH releases use) and pass its "
            "path with --image-weights PATH, or use --image-weights none")
    return load_matconvnet_cnnf(weights)


# ---- reading MatConvNet's simplenn .mat ----------------------------------------------------------

def load_matconvnet_cnnf(path: str | Path, widths: tuple[int, ...] = CNNF_WIDTHS) -> CnnfEncoder:
    """Build CNN-F from a MatConvNet simplenn file, checking every layer against CNN-F."""
    path = Path(path).expanduser()
    network = _read_network(path)
    file_layers = _simplenn_layers(network, path)
    expected = cnnf_layout(widths)
    if len(file_layers) < len(expected):
        missing = ", ".join(layer.name for layer in expected[len(file_layers):])
        raise CmhbenchError(
            f"{path}: has {len(file_layers)} layers; CNN-F needs {len(expected)} up to relu7 "
            f"(missing {missing})")
    layout, arrays = [], {}
    for index, (layer, want) in enumerate(zip(file_layers, expected, strict=False), start=1):
        parsed, conv_arrays = _parse_layer(layer, index, want, path)
        layout.append(parsed)
        if conv_arrays is not None:
            arrays[parsed.name] = conv_arrays
    layout = tuple(layout)
    _check_geometry(layout, path)
    body = build_body(layout)
    _copy_conv_weights(body, arrays)
    return CnnfEncoder(body, _average_image(network, path), widths[-1])


def _read_network(path: Path) -> dict[str, Any]:
    """The top-level fields of the file (or of its single ``net`` struct) as a dict."""
    if not path.is_file():
        raise CmhbenchError(
            f"image weights file {path} does not exist; expected 'none' or the path of MatConvNet's "
            "imagenet-vgg-f.mat")
    if _is_hdf5(path):
        raise CmhbenchError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; MatConvNet's "
            "imagenet-vgg-f.mat is MATLAB v5: re-download it, or re-save it in MATLAB with "
            "save(file, '-struct', 'net', '-v7')")
    import scipy.io  # imported here: only this path needs scipy

    try:
        contents = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except NotImplementedError:  # scipy's answer to v7.3 files whose header we did not catch
        raise CmhbenchError(f"{path} is a MATLAB v7.3 (HDF5) file; re-save it with -v7") from None
    except Exception as exc:
        raise CmhbenchError(
            f"{path} is not a readable MATLAB .mat file ({type(exc).__name__}: {exc}); expected "
            "MatConvNet's imagenet-vgg-f.mat") from None
    if "layers" not in contents and _is_struct(contents.get("net")):
        return {name: getattr(contents["net"], name) for name in contents["net"]._fieldnames}
    return contents


def _is_hdf5(path: Path) -> bool:
    # v7.3 files are HDF5 with a 512-byte MATLAB user block; HDF5 looks for its signature at 0,
    # 512, 1024, 2048, ...; the first few offsets cover MATLAB's files and bare h5py ones
    with path.open("rb") as handle:
        head = handle.read(2048 + len(_HDF5_SIGNATURE))
    size = len(_HDF5_SIGNATURE)
    return any(head[offset:offset + size] == _HDF5_SIGNATURE for offset in (0, 512, 1024, 2048))


def _is_struct(value: Any) -> bool:
    return hasattr(value, "_fieldnames")


def _simplenn_layers(network: dict[str, Any], path: Path) -> list[Any]:
    layers = network.get("layers")
    if layers is None:
        raise CmhbenchError(f"{path}: no 'layers' field; expected a MatConvNet simplenn network "
                            "(net.layers, a cell array of layer structs)")
    layers = [layers] if _is_struct(layers) else list(np.atleast_1d(layers))
    dagnn = "vars" in network and "params" in network
    if dagnn or any(_is_struct(layer) and hasattr(layer, "block") for layer in layers):
        raise CmhbenchError(
            f"{path} is a MatConvNet DagNN network; only the simplenn format is supported (the "
            "imagenet-vgg-f.mat that DCMH and SSAH use is simplenn)")
    for index, layer in enumerate(layers, start=1):
        if not _is_struct(layer) or not isinstance(getattr(layer, "type", None), str):
            raise CmhbenchError(f"{path}: layers{{{index}}} is not a layer struct with a 'type' field")
    return layers


_TYPES = {Conv: ("conv",), Relu: ("relu",), Lrn: ("normalize", "lrn"), MaxPool: ("pool",)}


def _parse_layer(layer: Any, index: int, want: Layer, path: Path) -> tuple[Layer, tuple | None]:
    """The file's layer as a Layer with the file's hyper-parameters, plus (filters, biases) for
    convs. Layers keep CNN-F's names (the module and state-dict names); the file's own name, which
    may be missing or duplicated, only appears in messages."""
    file_name = getattr(layer, "name", None)
    file_name = file_name if isinstance(file_name, str) and file_name else want.name
    where = f"{path}: layers{{{index}}} ('{file_name}')"
    name = want.name
    kind = layer.type
    if kind not in _TYPES[type(want)]:
        raise CmhbenchError(f"{where} is a '{kind}' layer; CNN-F expects {want.name} here, a "
                            f"'{_TYPES[type(want)][0]}' layer")
    if isinstance(want, Conv):
        return _parse_conv(layer, name, want, where)
    if isinstance(want, Relu):
        leak = np.asarray(getattr(layer, "leak", 0), dtype=np.float64).reshape(-1)  # may be []
        if np.any(leak != 0):
            raise CmhbenchError(f"{where}: a leaky ReLU (leak={leak.tolist()}); CNN-F's ReLUs have leak 0")
        return Relu(name), None
    if isinstance(want, Lrn):
        return _parse_lrn(layer, name, where), None
    return _parse_pool(layer, name, where), None


def _parse_conv(layer: Any, name: str, want: Conv, where: str) -> tuple[Conv, tuple]:
    filters, biases = _conv_arrays(layer, where)
    filters = _as_filter(filters, want.filter_shape, where)
    biases = np.asarray(biases, dtype=np.float32).reshape(-1)
    if biases.size != want.out_channels:
        raise CmhbenchError(f"{where}: {biases.size} biases, expected {want.out_channels}")
    dilate = _ints(getattr(layer, "dilate", 1), where, "dilate")
    if any(d != 1 for d in dilate):
        raise CmhbenchError(f"{where}: dilate={list(dilate)}, expected 1 (CNN-F has no dilated convolutions)")
    parsed = Conv(name, want.kernel, want.in_channels, want.out_channels,
                  stride=_pair(getattr(layer, "stride", 1), where, "stride"),
                  pad=_quad(getattr(layer, "pad", 0), where))
    return parsed, (filters, biases)


def _conv_arrays(layer: Any, where: str) -> tuple[Any, Any]:
    if hasattr(layer, "weights"):  # current files: weights = {filters, biases}
        weights = layer.weights
        if isinstance(weights, np.ndarray) and weights.dtype == object and weights.size == 2:
            return weights[0], weights[1]
        raise CmhbenchError(f"{where}: 'weights' should be a cell {{filters, biases}}")
    if hasattr(layer, "filters") and hasattr(layer, "biases"):  # older files
        return layer.filters, layer.biases
    raise CmhbenchError(f"{where}: a conv layer without 'weights' (or 'filters' and 'biases')")


def _as_filter(filters: Any, shape: tuple[int, int, int, int], where: str) -> np.ndarray:
    """The H×W×In×Out array, with the singleton dimensions that MATLAB and squeeze_me drop put back."""
    array = np.asarray(filters)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise CmhbenchError(f"{where}: filters are not a numeric array")

    def without_ones(dims: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(d for d in dims if d != 1)

    # inserting or removing size-1 axes never reorders elements, so a reshape restores them exactly
    if without_ones(array.shape) != without_ones(shape):
        raise CmhbenchError(
            f"{where}: filters of shape {'×'.join(map(str, array.shape))}, expected "
            f"{'×'.join(map(str, shape))} (height×width×in×out)")
    return array.astype(np.float32, copy=False).reshape(shape)


def _parse_lrn(layer: Any, name: str, where: str) -> Lrn:
    param = np.atleast_1d(np.asarray(getattr(layer, "param", []), dtype=np.float64))
    if param.size != 4:
        raise CmhbenchError(f"{where}: param should be [N KAPPA ALPHA BETA], got {param.tolist()}")
    size = param[0]
    if size != int(size) or size < 1 or int(size) % 2 == 0:
        raise CmhbenchError(
            f"{where}: LRN window N={param[0]:g}; only odd N is supported (MatConvNet and torch "
            "centre even windows differently); CNN-F uses N=5")
    return Lrn(name, int(size), float(param[1]), float(param[2]), float(param[3]))


def _parse_pool(layer: Any, name: str, where: str) -> MaxPool:
    method = getattr(layer, "method", "max")
    if method != "max":
        raise CmhbenchError(f"{where}: pooling method '{method}'; CNN-F uses 'max' pooling only")
    pool = _pair(getattr(layer, "pool", None), where, "pool")
    pad = _quad(getattr(layer, "pad", 0), where)
    top, bottom, left, right = pad
    if max(top, bottom) >= pool[0] or max(left, right) >= pool[1]:
        raise CmhbenchError(f"{where}: pad {list(pad)} must be smaller than the pool {list(pool)}")
    return MaxPool(name, pool, _pair(getattr(layer, "stride", 1), where, "stride"), pad)


def _ints(value: Any, where: str, field: str) -> tuple[int, ...]:
    array = np.atleast_1d(np.asarray(value if value is not None else [], dtype=np.float64)).reshape(-1)
    if array.size == 0 or np.any(array != np.round(array)) or np.any(array < 0):
        raise CmhbenchError(f"{where}: '{field}' = {array.tolist()}, expected non-negative integers")
    return tuple(int(v) for v in array)


def _pair(value: Any, where: str, field: str) -> tuple[int, int]:
    values = _ints(value, where, field)
    if len(values) not in (1, 2) or 0 in values:
        raise CmhbenchError(f"{where}: '{field}' = {list(values)}, expected a positive scalar or [Y X]")
    return (values[0], values[-1])


def _quad(value: Any, where: str) -> tuple[int, int, int, int]:
    values = _ints(value, where, "pad")
    if len(values) not in (1, 4):
        raise CmhbenchError(f"{where}: 'pad' = {list(values)}, expected a scalar or [TOP BOTTOM LEFT RIGHT]")
    return values * 4 if len(values) == 1 else values  # type: ignore[return-value]


def _check_geometry(layout: tuple[Layer, ...], path: Path) -> None:
    """The file's strides and pads must bring a 224×224 input to a 1×1 map at fc7."""
    height = width = INPUT_SIZE
    for layer in layout:
        if isinstance(layer, (Conv, MaxPool)):
            window = layer.kernel if isinstance(layer, Conv) else layer.pool
            top, bottom, left, right = layer.pad
            height = (height + top + bottom - window[0]) // layer.stride[0] + 1
            width = (width + left + right - window[1]) // layer.stride[1] + 1
            if height < 1 or width < 1:
                raise CmhbenchError(
                    f"{path}: the layers' strides and pads leave nothing at {layer.name} for a "
                    f"{INPUT_SIZE}×{INPUT_SIZE} input; expected CNN-F's geometry")
    if (height, width) != (1, 1):
        raise CmhbenchError(
            f"{path}: with the file's strides and pads, fc7 gives a {height}×{width} map for a "
            f"{INPUT_SIZE}×{INPUT_SIZE} input; CNN-F's gives 1×1 (pool5 must give fc6 a 6×6 map)")


def _copy_conv_weights(body: nn.Sequential, arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    with torch.no_grad():
        for name, (filters, biases) in arrays.items():
            conv = getattr(body, name)
            # MatConvNet H×W×In×Out -> torch Out×In×H×W
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1))))
            conv.bias.copy_(torch.from_numpy(biases))


def _average_image(network: dict[str, Any], path: Path) -> torch.Tensor:
    """meta.normalization.averageImage (or normalization.averageImage) as 1×3×1×1 or 1×3×224×224."""
    meta = network.get("meta")
    normalization = getattr(meta, "normalization", None) if meta is not None else network.get("normalization")
    average = getattr(normalization, "averageImage", None)
    if average is None:
        raise CmhbenchError(f"{path}: no meta.normalization.averageImage (or normalization.averageImage); "
                            "expected the mean image or colour CNN-F was trained with")
    average = np.asarray(average, dtype=np.float32)
    if average.size == 3:
        return torch.from_numpy(average.reshape(1, 3, 1, 1).copy())
    if average.shape == (INPUT_SIZE, INPUT_SIZE, 3):
        return torch.from_numpy(np.ascontiguousarray(average.transpose(2, 0, 1))[None])
    raise CmhbenchError(
        f"{path}: averageImage has shape {'×'.join(map(str, average.shape))}; expected "
        f"{INPUT_SIZE}×{INPUT_SIZE}×3 or an RGB 3-vector")
