"""CNN-F from MatConvNet files, and the toy CNN.

The .mat files are written here with scipy in imagenet-vgg-f.mat's simplenn structure. Most use a
narrow copy of CNN-F (same kernels, strides, pads and a 224 input, a few channels per layer) so
that an independent float64 numpy forward pass of MatConvNet's semantics stays cheap; one file has
the real widths (zero weights, compressed) to check the true shapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io
import torch
from numpy.lib.stride_tricks import sliding_window_view

from cmhbench.encoders.cnnf import CNNF_WIDTHS, create_cnnf, load_matconvnet_cnnf
from cmhbench.encoders.toycnn import create_toy_cnn
from cmhbench.errors import CmhbenchError
from cmhbench.plugins.registry import build_registry

NARROW = (5, 7, 6, 6, 8, 12, 10)  # conv1..conv5, fc6, fc7: distinct, so a swapped axis shows
LRN1 = [5, 2.0, 1e-4, 0.75]  # imagenet-vgg-f.mat's norm1/norm2 param
LRN2 = [3, 1.0, 2e-3, 0.5]  # a different one, to check each layer's param is read


# ---- writing simplenn files ----------------------------------------------------------------------

def he_filters(rng: np.random.Generator):
    def make(shape):
        fan_in = shape[0] * shape[1] * shape[2]
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
    return make


def cell(*items) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = list(items)
    return array


def conv(name, h, w, cin, cout, stride, pad, filters, biases, old_style=False):
    f = filters((h, w, cin, cout))
    b = biases(cout)
    params = {"filters": f, "biases": b} if old_style else {"weights": cell(f, b)}
    return {"name": name, "type": "conv", **params, "stride": np.array([stride, stride], float),
            "pad": np.array(pad if isinstance(pad, list) else [pad] * 4, float),
            "dilate": np.array([1.0, 1.0])}


def relu(name):
    return {"name": name, "type": "relu", "leak": 0.0}


def norm(name, param, old_style=False):
    return {"name": name, "type": "normalize" if old_style else "lrn", "param": np.array(param, float)}


def pool(name, pad):
    return {"name": name, "type": "pool", "method": "max", "pool": np.array([3.0, 3.0]),
            "stride": np.array([2.0, 2.0]), "pad": np.array(pad, float)}


def vgg_f_layers(widths, filters, biases, old_style=False) -> list[dict]:
    """imagenet-vgg-f.mat's layers (with LRN2 for norm2), fc8 and the softmax included."""
    c1, c2, c3, c4, c5, f6, f7 = widths
    k = dict(filters=filters, biases=biases, old_style=old_style)
    return [
        conv("conv1", 11, 11, 3, c1, 4, 0, **k), relu("relu1"), norm("norm1", LRN1, old_style),
        pool("pool1", [0, 1, 0, 1]),
        conv("conv2", 5, 5, c1, c2, 1, 2, **k), relu("relu2"), norm("norm2", LRN2, old_style),
        pool("pool2", [0, 0, 0, 0]),
        conv("conv3", 3, 3, c2, c3, 1, 1, **k), relu("relu3"),
        conv("conv4", 3, 3, c3, c4, 1, 1, **k), relu("relu4"),
        conv("conv5", 3, 3, c4, c5, 1, 1, **k), relu("relu5"), pool("pool5", [0, 0, 0, 0]),
        conv("fc6", 6, 6, c5, f6, 1, 0, **k), relu("relu6"),
        conv("fc7", 1, 1, f6, f7, 1, 0, **k), relu("relu7"),
        conv("fc8", 1, 1, f7, 3, 1, 0, **k), {"name": "prob", "type": "softmax"},
    ]


def write_simplenn(path, layers, average_image, old_style=False, compress=False):
    normalization = {"averageImage": average_image, "imageSize": np.array([224.0, 224.0, 3.0])}
    top = {"normalization": normalization} if old_style else {"meta": {"normalization": normalization}}
    scipy.io.savemat(str(path), {"layers": cell(*layers), **top}, do_compression=compress)
    return path


def narrow_file(tmp_path, seed=0, old_style=False, edit=None):
    rng = np.random.default_rng(seed)
    layers = vgg_f_layers(NARROW, he_filters(rng),
                          lambda n: rng.uniform(0.05, 0.3, n).astype(np.float32), old_style)
    if edit is not None:
        layers = edit(layers)
    mean = rng.uniform(90, 130, (224, 224, 3)).astype(np.float32)
    return write_simplenn(tmp_path / "vgg-f-narrow.mat", layers, mean, old_style), layers, mean


# ---- an independent float64 forward pass of MatConvNet's semantics, on H×W×C arrays --------------

def ref_conv(x, filters, biases, stride, pad):
    top, bottom, left, right = pad
    x = np.pad(x, ((top, bottom), (left, right), (0, 0)))  # zeros
    kh, kw = filters.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(0, 1))[::stride, ::stride]  # Ho×Wo×C×kh×kw
    return np.einsum("yxcij,ijco->yxo", windows, filters.astype(np.float64), optimize=True) + biases


def ref_lrn(x, n, kappa, alpha, beta):
    """vl_nnnormalize: window [k - floor((n-1)/2), k + ceil((n-1)/2)], alpha not divided by n."""
    depth = x.shape[2]
    out = np.empty_like(x)
    for k in range(depth):
        lo, hi = max(0, k - (n - 1) // 2), min(depth - 1, k + math.ceil((n - 1) / 2))
        out[:, :, k] = x[:, :, k] / (kappa + alpha * (x[:, :, lo:hi + 1] ** 2).sum(2)) ** beta
    return out


def ref_maxpool(x, size, stride, pad):
    """vl_nnpool 'max': each window clipped to the input (pad = [top bottom left right])."""
    top, bottom, left, right = pad
    height, width = x.shape[:2]
    out_h, out_w = (height + top + bottom - size) // stride + 1, (width + left + right - size) // stride + 1
    out = np.empty((out_h, out_w, x.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            y0, x0 = i * stride - top, j * stride - left
            out[i, j] = x[max(y0, 0):min(y0 + size, height), max(x0, 0):min(x0 + size, width)].max((0, 1))
    return out


def ref_forward(image, layers, mean, alpha_over_n=False, pool1_pad=None):
    """uint8 224×224×3 -> the output of every layer up to relu7, as H×W×C arrays. The two keyword
    arguments plant the usual conversion mistakes."""
    x, outputs = image.astype(np.float64) - mean, []
    for layer in layers[:19]:  # up to relu7
        kind = layer["type"]
        if kind == "conv":
            f, b = layer["weights"] if "weights" in layer else (layer["filters"], layer["biases"])
            x = ref_conv(x, f, b, int(layer["stride"][0]), [int(p) for p in layer["pad"]])
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind in ("lrn", "normalize"):
            n, kappa, alpha, beta = layer["param"]
            x = ref_lrn(x, int(n), kappa, alpha / n if alpha_over_n else alpha, beta)
        else:
            pad = pool1_pad if (pool1_pad and layer["name"] == "pool1") else [int(p) for p in layer["pad"]]
            x = ref_maxpool(x, 3, 2, pad)
        outputs.append(x)
    assert x.shape[:2] == (1, 1)
    return outputs


def torch_stages(encoder, image):
    """The loaded body's output after every layer, as H×W×C arrays (the mean subtracted first)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() - encoder.mean
    outputs = []
    with torch.no_grad():
        for module in encoder.body:
            x = module(x)
            outputs.append(x[0].permute(1, 2, 0).double().numpy().copy())  # copy: ReLUs are in place
    return outputs


def relative_error(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


# ---- (a) MatConvNet semantics ---------------------------------------------------------------------

def asymmetric_pads(layers):
    """Pads that keep CNN-F's geometry but tell [top bottom left right] from any other order."""
    for layer in layers:
        if layer["name"] in ("pool1", "conv2"):
            layer["pad"] = np.array([1.0, 0, 0, 1] if layer["name"] == "pool1" else [1.0, 3, 2, 2])
    return layers


@pytest.mark.parametrize("old_style, edit", [(False, None), (True, None), (False, asymmetric_pads)],
                         ids=["weights-cell+meta", "filters-biases+normalization", "asymmetric-pads"])
def test_loaded_cnnf_matches_a_float64_matconvnet_reference(tmp_path, old_style, edit):
    path, layers, mean = narrow_file(tmp_path, old_style=old_style, edit=edit)
    encoder = load_matconvnet_cnnf(path, widths=NARROW).eval()
    image = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)

    want = ref_forward(image, layers, mean)
    for index, (got, expected) in enumerate(zip(torch_stages(encoder, image), want, strict=True)):
        assert got.shape == expected.shape, layers[index]["name"]
        assert relative_error(got, expected) < 1e-4, layers[index]["name"]
    with torch.no_grad():
        features = encoder(torch.from_numpy(image)[None]).double().numpy()[0]
    assert encoder.out_dim == NARROW[-1] and features.shape == (NARROW[-1],)
    assert (want[-1] > 0).any(), "relu7 is all zero: the end-to-end check would be vacuous"
    assert relative_error(features, want[-1].reshape(-1)) < 1e-4
    # the check is sharp: the usual conversion mistakes move the outputs far beyond the tolerance
    for mistake in ({"alpha_over_n": True}, {"pool1_pad": [1, 0, 1, 0]}):
        wrong = ref_forward(image, layers, mean, **mistake)
        assert max(relative_error(a, b) for a, b in zip(wrong, want, strict=True)) > 1e-2, mistake


def test_lrn_and_pool_parameters_come_from_the_file(tmp_path):
    path, _, _ = narrow_file(tmp_path)
    body = load_matconvnet_cnnf(path, widths=NARROW).body
    assert (body.norm1.size, body.norm1.kappa, body.norm1.alpha, body.norm1.beta) == tuple(LRN1)
    assert (body.norm2.size, body.norm2.kappa, body.norm2.alpha, body.norm2.beta) == tuple(LRN2)
    assert body.pool1.pad == (0, 1, 0, 1)  # F.pad order (left, right, top, bottom) of [0 1 0 1]


# ---- (b) filter layout ---------------------------------------------------------------------------

def test_filters_are_transposed_to_torch_layout(tmp_path):
    """MatConvNet H×W×In×Out -> torch Out×In×H×W, including fc7's 1×1 filter that MATLAB squeezes."""
    spikes = {"conv1": (2, 7, 1, 3), "fc7": (0, 0, 4, 9)}  # (h, w, in, out), h != w, in != out
    torch_shapes = {"conv1": (NARROW[0], 3, 11, 11), "fc7": (NARROW[6], NARROW[5], 1, 1)}

    def spike(layers):
        for layer in layers:
            if layer["name"] in spikes:
                filters = np.zeros_like(layer["weights"][0])
                filters[spikes[layer["name"]]] = 1.0
                layer["weights"] = cell(filters, layer["weights"][1])
        return layers

    path, _, _ = narrow_file(tmp_path, edit=spike)
    body = load_matconvnet_cnnf(path, widths=NARROW).body
    for name, (h, w, cin, cout) in spikes.items():
        weight = getattr(body, name).weight
        assert weight.shape == torch_shapes[name]
        assert torch.nonzero(weight).tolist() == [[cout, cin, h, w]], name


# ---- (c) malformed files ---------------------------------------------------------------------------

def without(name):
    return lambda layers: [layer for layer in layers if layer["name"] != name]


def reshaped_filter(name, shape):
    def edit(layers):
        for layer in layers:
            if layer["name"] == name:
                layer["weights"] = cell(np.zeros(shape, np.float32), layer["weights"][1])
        return layers
    return edit


def with_field(name, field, value):
    def edit(layers):
        for layer in layers:
            if layer["name"] == name:
                layer[field] = value
        return layers
    return edit


@pytest.mark.parametrize("edit, expected", [
    (without("conv3"), r"layers\{9\} \('relu3'\) is a 'relu' layer; CNN-F expects conv3"),
    (lambda layers: layers[:12], r"has 12 layers; CNN-F needs 19 .*missing conv5, relu5, pool5"),
    (reshaped_filter("conv2", (5, 5, 5, 8)),
     r"layers\{5\} \('conv2'\): filters of shape 5×5×5×8, expected 5×5×5×7"),
    (reshaped_filter("fc6", (5, 5, 8, 12)), r"'fc6'\): filters of shape 5×5×8×12, expected 6×6×8×12"),
    (with_field("norm2", "param", np.array([4.0, 1, 1e-4, 0.75])), r"'norm2'\): LRN window N=4"),
    (with_field("pool1", "method", "avg"), r"'pool1'\): pooling method 'avg'"),
    (with_field("conv1", "stride", np.array([2.0, 2.0])), r"fc7 gives a 7×7 map"),
], ids=["missing-layer", "truncated", "conv2-shape", "fc6-shape", "even-lrn", "avg-pool", "geometry"])
def test_malformed_simplenn_files_are_refused_naming_file_and_layer(tmp_path, edit, expected):
    path, _, _ = narrow_file(tmp_path, edit=edit)
    with pytest.raises(CmhbenchError, match=expected) as error:
        load_matconvnet_cnnf(path, widths=NARROW)
    assert str(path) in str(error.value)


def test_dagnn_files_are_refused(tmp_path):
    dag_layer = np.dtype([(f, object) for f in ("name", "type", "inputs", "outputs", "params", "block")])
    conv1 = ("conv1", "dagnn.Conv", "input", "x1", cell("conv1f", "conv1b"), {"size": [11, 11, 3, 64]})
    layers = np.array([conv1], dtype=dag_layer)
    params = np.array([("conv1f", np.zeros((2, 2), np.float32))], dtype=[("name", object), ("value", object)])
    path = tmp_path / "dagnn.mat"
    scipy.io.savemat(str(path), {"layers": layers, "params": params,
                                 "vars": np.array([("input",)], dtype=[("name", object)]),
                                 "meta": {"normalization": {"averageImage": np.zeros(3)}}})
    with pytest.raises(CmhbenchError, match="DagNN network; only the simplenn format is supported") as error:
        load_matconvnet_cnnf(path)
    assert str(path) in str(error.value)


def test_v73_hdf5_files_are_refused(tmp_path):
    import h5py

    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:  # MATLAB's layout: a 512-byte user block
        handle.create_dataset("layers", data=np.zeros(3))
    header = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 "
              b"HDF5 schema 1.00 .")
    with path.open("r+b") as handle:
        handle.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")
    with pytest.raises(CmhbenchError, match=r"MATLAB v7\.3 \(HDF5\)") as error:
        create_cnnf(str(path))
    assert str(path) in str(error.value)


def test_missing_and_non_mat_files_are_refused(tmp_path):
    with pytest.raises(CmhbenchError, match="does not exist"):
        create_cnnf(str(tmp_path / "absent.mat"))
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a mat file" * 20)
    with pytest.raises(CmhbenchError, match="not a readable MATLAB .mat file"):
        create_cnnf(str(junk))


def test_full_size_file_loads_with_the_real_shapes(tmp_path):
    """Real widths, zero weights, compressed (about 0.2 MB, a few seconds); a 3-vector mean."""
    layers = vgg_f_layers(CNNF_WIDTHS, lambda shape: np.zeros(shape, np.float32),
                          lambda n: np.zeros(n, np.float32))
    path = write_simplenn(tmp_path / "vgg-f.mat", layers, np.array([122.8, 114.9, 101.6]), compress=True)
    encoder = load_matconvnet_cnnf(path)
    assert encoder.out_dim == 4096
    assert encoder.body.fc6.weight.shape == (4096, 256, 6, 6)
    assert encoder.body.fc7.weight.shape == (4096, 4096, 1, 1)
    assert encoder.mean.flatten().tolist() == pytest.approx([122.8, 114.9, 101.6], abs=1e-4)


# ---- (d) toy-cnn -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
def test_toy_cnn_gives_512_features(size):
    torch.manual_seed(0)
    encoder = create_toy_cnn("none")
    raw = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    out = encoder(raw)
    assert encoder.out_dim == 512 and out.shape == (2, 512) and out.dtype == torch.float32


def test_toy_cnn_refuses_float_input_and_imagenet_weights():
    encoder = create_toy_cnn("none")
    with pytest.raises(CmhbenchError, match=r"uint8 N×H×W×3 pixels, got torch.float32 \(2, 32, 32, 3\)"):
        encoder(torch.rand(2, 32, 32, 3))
    with pytest.raises(CmhbenchError, match="toy-cnn has no pretrained .* --image-weights none"):
        create_toy_cnn("imagenet")


def test_toy_cnn_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    original = create_toy_cnn("none")
    torch.save(original.state_dict(), tmp_path / "toy.pt")
    loaded = create_toy_cnn(str(tmp_path / "toy.pt"))
    raw = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(original(raw), loaded(raw))
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CmhbenchError, match="is not a state dict for toy-cnn"):
        create_toy_cnn(str(tmp_path / "other.pt"))


# ---- (e) cnnf without weights, and registration ------------------------------------------------------

def test_random_cnnf_resizes_small_images_to_4096_features():
    torch.manual_seed(0)
    encoder = create_cnnf("none").eval()
    with torch.no_grad():
        out = encoder(torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8))
    assert out.shape == (2, 4096) and encoder.out_dim == 4096
    assert torch.isfinite(out).all() and (out >= 0).all()
    with pytest.raises(CmhbenchError, match="uint8 N×H×W×3"):
        encoder(torch.zeros(2, 512))


def test_encoders_are_registered_and_cnnf_imagenet_names_the_file():
    registry = build_registry()
    cnnf = registry.encoder("cnnf")
    assert (cnnf.citation.venue, cnnf.citation.year) == ("BMVC", 2014)
    assert cnnf.citation.authors == "Chatfield, Simonyan, Vedaldi, Zisserman"
    with pytest.raises(CmhbenchError,
                       match=r"torchvision does not ship CNN-F.*imagenet-vgg-f\.mat.*--image-weights PATH"):
        cnnf.create("imagenet", None)
    toy = registry.encoder("toy-cnn")
    assert toy.citation is None and toy.description.startswith("a small 3-layer CNN for the synthetic toy images")
    assert toy.create("none", None).out_dim == 512
