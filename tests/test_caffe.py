"""Caffe interop: .caffemodel/.prototxt reading (V1, V2, hand-built bytes), export, OpenCV, torchvision, CLIs."""
import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from guidedlabelling import caffemodel as cm
from guidedlabelling.io import InputError, save_checkpoint
from guidedlabelling.networks import DeepLabLargeFOV, GAPNet, init_from_scratch
from guidedlabelling.weights import load_caffe_state, load_init

ROOT = Path(__file__).resolve().parents[1]
WIDTH, SIZE = 1 / 16, 65
NETS = ["GAP-HighRes", "GAP-LowRes", "GAP-DeepLab", "DeepLab-LargeFOV"]


def make_net(name, width=WIDTH, seed=0):
    torch.manual_seed(seed)
    model = DeepLabLargeFOV(21, width) if name == "DeepLab-LargeFOV" else GAPNet(name, 20, width)
    init_from_scratch(model)
    return model.eval()


def caffe_input(seed=0):
    """A Caffe-preprocessed image: BGR 0..255 minus the mean."""
    rng = np.random.default_rng(seed)
    bgr = rng.integers(0, 256, (1, 3, SIZE, SIZE)).astype(np.float32)
    return torch.from_numpy(bgr - cm.MEAN_BGR[:, None, None])


def forward(model, x):
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, tuple) else (out,)


def export(tmp_path, model, name="net"):
    paths = tmp_path / f"{name}.caffemodel", tmp_path / f"{name}.prototxt"
    cm.write_caffe(model, *paths, size=SIZE)
    return paths


# ---- protobuf wire format by hand (field numbers of BVLC caffe.proto) ----

def varint(n):
    n &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def vfield(num, value):
    return varint(num << 3) + varint(value)


def lfield(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def sfield(num, text):
    return lfield(num, text.encode())


def packed(num, values, fmt="<f4"):
    return lfield(num, np.asarray(values, fmt).tobytes())


def unpacked_floats(num, values):
    return b"".join(varint(num << 3 | 5) + struct.pack("<f", v) for v in values)


def legacy_blob(dims, values, data=packed):
    return b"".join(vfield(i + 1, d) for i, d in enumerate(dims)) + data(5, values)


def shape_blob(dims, values, double=False):
    shape = lfield(7, lfield(1, b"".join(varint(d) for d in dims)))
    return packed(8, values, "<f8") + shape if double else packed(5, values) + shape


def v1_file():
    """V1 net (`layers`, field 2): conv (type 4) with legacy 4-D blobs, ReLU (18), InnerProduct (14) unpacked."""
    conv = (sfield(2, "data") + sfield(3, "conv1_1") + sfield(4, "conv1_1") + vfield(5, 4)
            + lfield(6, legacy_blob([2, 3, 1, 1], range(6))) + lfield(6, legacy_blob([1, 1, 1, 2], [0.5, -0.5])))
    relu = sfield(4, "relu1_1") + vfield(5, 18)
    ip = sfield(4, "score") + vfield(5, 14) + lfield(6, legacy_blob([1, 1, 4, 2], range(8), unpacked_floats))
    return sfield(1, "v1net") + lfield(2, conv) + lfield(2, relu) + lfield(2, ip)


def v2_file():
    """V2 net (`layer`, field 100): conv with `shape` and double_data; InnerProduct stored transposed."""
    conv = sfield(1, "fc6") + sfield(2, "Convolution") + lfield(7, shape_blob([3, 2, 1, 1], range(6), double=True))
    ip = (sfield(1, "score") + sfield(2, "InnerProduct") + lfield(7, shape_blob([2, 5], range(10)))
          + lfield(117, vfield(6, 1)))
    return sfield(1, "v2net") + lfield(100, conv) + lfield(100, ip)


# ---- reading hand-built files ----

def test_v1_file_reads(tmp_path):
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(v1_file())
    state = cm.caffe_state_dict(path)
    assert sorted(state) == ["conv1_1.bias", "conv1_1.weight", "score.weight"]
    assert torch.equal(state["conv1_1.weight"], torch.arange(6.0).reshape(2, 3, 1, 1))
    assert torch.equal(state["conv1_1.bias"], torch.tensor([0.5, -0.5]))
    assert torch.equal(state["score.weight"], torch.arange(8.0).reshape(4, 2))
    layers = cm.net_layers(cm.read_caffemodel(path))
    assert [cm.layer_type(layer) for layer in layers] == ["Convolution", "ReLU", "InnerProduct"]


def test_v2_file_reads_double_data_and_transpose(tmp_path):
    path = tmp_path / "v2.caffemodel"
    path.write_bytes(v2_file())
    state = cm.caffe_state_dict(path)
    assert state["fc6.weight"].dtype == torch.float64
    assert torch.equal(state["fc6.weight"], torch.arange(6.0, dtype=torch.float64).reshape(3, 2, 1, 1))
    assert torch.equal(state["score.weight"], torch.arange(10.0).reshape(2, 5).T)


def test_schema_writes_the_same_bytes():
    net = cm.NetParameter(name="v2net")
    layer = net.layer.add(name="score", type="InnerProduct")
    layer.blobs.add(data=range(10)).shape.dim.extend([2, 5])
    layer.inner_product_param.transpose = True
    body = sfield(1, "score") + sfield(2, "InnerProduct") + lfield(7, shape_blob([2, 5], range(10))) + \
        lfield(117, vfield(6, 1))
    assert net.SerializeToString() == sfield(1, "v2net") + lfield(100, body)


def test_prototxt_with_fields_outside_the_schema(tmp_path):
    path = tmp_path / "train.prototxt"
    path.write_text('name: "x"\n'
                    'layer { name: "data" type: "ImageSegData" top: "data" transform_param { mirror: true }\n'
                    '  include { phase: TRAIN } }\n'
                    'layer { name: "conv1_1" type: "Convolution" bottom: "data" top: "conv1_1"\n'
                    '  param { lr_mult: 1 } convolution_param { num_output: 64 pad: 1 kernel_size: 3\n'
                    '  weight_filler { type: "gaussian" std: 0.01 } } }\n'
                    'layers { name: "fc8" type: INNER_PRODUCT blobs_lr: 1 inner_product_param { num_output: 21 } }\n')
    net = cm.read_prototxt(path)
    assert [(layer.name, layer.type) for layer in net.layer] == [("data", "ImageSegData"), ("conv1_1", "Convolution")]
    assert net.layer[1].convolution_param.num_output == 64
    assert cm.layer_type(net.layers[0]) == "InnerProduct"
    (tmp_path / "bad.prototxt").write_text("layer { name: ")
    with pytest.raises(InputError, match="bad.prototxt"):
        cm.read_prototxt(tmp_path / "bad.prototxt")


# ---- our networks -> Caffe -> back ----

@pytest.mark.parametrize("name", NETS)
def test_round_trip(tmp_path, name):
    model = make_net(name)
    caffemodel, _ = export(tmp_path, model)
    state = cm.caffe_state_dict(caffemodel)
    own = model.state_dict()
    assert len(state) == len(own)
    for key, tensor in own.items():
        assert torch.equal(state[".".join(key.split(".")[-2:])], tensor), key
    back = load_caffe_state(make_net(name, seed=1), state, caffemodel)
    for a, b in zip(forward(model, caffe_input()), forward(back, caffe_input())):
        assert torch.equal(a, b)


def test_width_multiplier_channels(tmp_path):
    caffemodel, prototxt = export(tmp_path, make_net("GAP-HighRes", width=0.1))
    net = cm.read_prototxt(prototxt)
    outputs = {layer.name: layer.convolution_param.num_output for layer in net.layer
               if layer.type == "Convolution"}
    assert outputs["conv1_1"] == 6 and outputs["conv3_1"] == 26 and outputs["fc7_gap"] == 102
    assert cm.caffe_state_dict(caffemodel)["score.weight"].shape == (20, 102)


def test_load_init_takes_caffemodels(tmp_path):
    caffemodel, _ = export(tmp_path, make_net("DeepLab-LargeFOV"))
    report = load_init(make_net("GAP-DeepLab", seed=2), caffemodel)
    assert report[0].startswith("loaded 30 of 31")  # all but score, which DeepLab has not


@pytest.mark.parametrize("name", NETS)
def test_opencv_runs_our_export(tmp_path, name):
    """OpenCV's Caffe importer gives our outputs; the 65 -> 33 -> 17 -> 9 maps check its ceil-mode pooling."""
    model = make_net(name)
    caffemodel, prototxt = export(tmp_path, model)
    x = caffe_input()
    ours = forward(model, x)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setInput(x.numpy())
    if name == "DeepLab-LargeFOV":
        pairs = [(net.forward("fc8"), ours[0])]
    else:
        features = {"GAP-HighRes": "relu7_gap", "GAP-LowRes": "relu6_gap", "GAP-DeepLab": "relu7"}[name]
        pairs = list(zip(net.forward(["score", features]), ours))
    for theirs, mine in pairs:
        assert theirs.shape == tuple(mine.shape)
        scale = mine.abs().max().item()
        assert scale > 0 and np.abs(theirs - mine.numpy()).max() < 1e-4 * scale
    if name == "GAP-HighRes":
        assert ours[1].shape[-2:] == (9, 9)  # 65 -> 33 -> 17 -> 9 rounding up; down would give 8


# ---- bad files ----

def bad_files(tmp_path):
    good = v1_file()
    huge = sfield(1, "conv") + sfield(2, "Convolution") + lfield(7, shape_blob([10 ** 12, 10 ** 12], range(4)))
    negative = sfield(1, "conv") + sfield(2, "Convolution") + lfield(7, shape_blob([-2, -2], range(4)))
    legacy = sfield(4, "conv") + vfield(5, 4) + lfield(6, legacy_blob([2, 3, 1, 1], range(5)))
    files = {"empty": b"", "text": b'name: "net"\n', "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(64),
             "zip": b"PK\x03\x04" + bytes(64), "truncated": good[:len(good) // 2],
             "huge_dims": lfield(100, huge), "negative_dims": lfield(100, negative), "legacy_count": lfield(2, legacy),
             "v1_and_v2": v1_file() + v2_file(), "no_weights": sfield(1, "empty net")}
    for name, data in files.items():
        (tmp_path / f"{name}.caffemodel").write_bytes(data)
    return [tmp_path / f"{name}.caffemodel" for name in files] + [tmp_path / "missing.caffemodel", tmp_path]


def test_bad_files_give_one_line_errors(tmp_path):
    for path in bad_files(tmp_path):
        start = time.monotonic()
        with pytest.raises(InputError) as err:
            cm.caffe_state_dict(path)
        message = str(err.value)
        assert str(path) in message and "\n" not in message, message
        assert time.monotonic() - start < 1


def test_fuzz_mutations(tmp_path):
    """Random mutations of small valid files: tensors or InputError, nothing else, and fast."""
    rng = np.random.default_rng(0)
    caffemodel, _ = export(tmp_path, make_net("GAP-HighRes", width=1 / 64))
    seeds = [v1_file(), v2_file(), caffemodel.read_bytes()]
    path = tmp_path / "fuzz.caffemodel"
    start = time.monotonic()
    outcomes = {"ok": 0, "error": 0}
    for i in range(300):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(0, len(data)))
            op = rng.integers(0, 4)
            if op == 0:
                data[at] = int(rng.integers(0, 256))
            elif op == 1:
                del data[at:]
            elif op == 2:
                data[at:at] = rng.integers(0, 256, int(rng.integers(1, 12))).astype(np.uint8).tobytes()
            else:
                data[at:at] = data[at:at + int(rng.integers(1, 64))]
            if not data:
                data = bytearray(b"\x0a")
        path.write_bytes(bytes(data))
        try:
            state = cm.caffe_state_dict(path)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
            outcomes["ok"] += 1
        except InputError as e:
            assert str(path) in str(e)
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]
    assert time.monotonic() - start < 20


# ---- torchvision VGG-16 ----

def torchvision_like_state(width=WIDTH, seed=0):
    """A torchvision vgg16 state dict (features.N conv indices) with our channel counts at `width`."""
    torch.manual_seed(seed)
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    channels = [round(c * width) for c, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)] for _ in range(n)]
    state, cin = {}, 3
    for i, cout in zip(indices, channels):
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3) * 0.1
        state[f"features.{i}.bias"] = torch.randn(cout) * 0.1
        cin = cout
    state["classifier.0.weight"] = torch.randn(4, cin * 49)
    return state


def test_torchvision_conv1_matches_on_caffe_input():
    state = torchvision_like_state()
    rgb = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 3, 40, 50)).astype(np.float32))
    mean = torch.tensor(cm.TORCHVISION_MEAN_RGB)[:, None, None]
    std = torch.tensor(cm.TORCHVISION_STD_RGB)[:, None, None]
    theirs = F.conv2d((rgb / 255 - mean) / std, state["features.0.weight"], state["features.0.bias"], padding=1)
    caffe = cm.torchvision_vgg16_to_caffe(state)
    x = rgb.flip(1) - torch.from_numpy(cm.MEAN_BGR)[:, None, None]
    ours = F.conv2d(x, caffe["conv1_1.weight"], caffe["conv1_1.bias"], padding=1)
    scale = theirs.abs().max()
    assert (ours - theirs)[..., 1:-1, 1:-1].abs().max() < 1e-5 * scale  # exact inside
    assert (ours - theirs).abs().max() < 0.05 * scale  # the border sees another padding colour
    assert torch.equal(caffe["conv2_1.weight"], state["features.5.weight"])


def test_torchvision_rejects_other_state_dicts():
    with pytest.raises(InputError, match="not a torchvision VGG-16"):
        cm.torchvision_vgg16_to_caffe({"conv1_1.weight": torch.zeros(4, 3, 3, 3)}, "x.pth")


# ---- command lines ----

def test_scripts_run_from_the_repo_root():
    """caffe/inspect.py must not shadow the stdlib `inspect` (torch imports it) for either script."""
    for script in ("caffe/inspect.py", "caffe/convert.py"):
        assert os.access(ROOT / script, os.X_OK), script
        done = subprocess.run([sys.executable, script, "-h"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def cli(name):
    """A script of caffe/ as a module, run in this process (its bootstrap's sys.path change undone)."""
    saved = sys.path[:]
    spec = importlib.util.spec_from_file_location(f"caffe_{name}_cli", ROOT / "caffe" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = saved
    return module


def run_main(capsys, name, *args):
    """(exit status, stdout, stderr) of caffe/<name>.py with these arguments."""
    try:
        cli(name).main([str(a) for a in args])
        status = 0
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def test_inspect_cli(tmp_path, capsys):
    v1 = tmp_path / "v1.caffemodel"
    v1.write_bytes(v1_file())
    prototxt = tmp_path / "p.prototxt"
    prototxt.write_text('layer { name: "score" type: "InnerProduct" }\n')
    status, out, _ = run_main(capsys, "inspect", v1)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [
        {"name": "conv1_1", "type": "Convolution", "blobs": [[2, 3, 1, 1], [1, 1, 1, 2]]},
        {"name": "score", "type": "InnerProduct", "blobs": [[1, 1, 4, 2]]}]
    status, out, err = run_main(capsys, "inspect", v1, "--prototxt", prototxt)
    assert status == 0 and len(out.splitlines()) == 1 and "conv1_1" in err
    status, _, err = run_main(capsys, "inspect", prototxt)
    assert status == 2 and err.startswith("error: ") and str(prototxt) in err and err.count("\n") == 1


def test_convert_cli_both_ways(tmp_path, capsys):
    model = make_net("GAP-HighRes")
    classes = ["background"] + [f"c{i}" for i in range(20)]
    meta = {"kind": "seed", "net": "GAP-HighRes", "width": WIDTH, "classes": classes}
    save_checkpoint(tmp_path / "model.pth", model, meta)
    status, _, err = run_main(capsys, "convert", "to-caffe", tmp_path / "model.pth", tmp_path / "seed.caffemodel",
                              "--input-size", 65)
    assert status == 0 and (tmp_path / "seed.prototxt").exists(), err
    (tmp_path / "classes.txt").write_text("\n".join(classes))
    status, _, err = run_main(capsys, "convert", "from-caffe", tmp_path / "seed.caffemodel", tmp_path / "back.pth",
                              "--kind", "seed", "--classes", tmp_path / "classes.txt")
    assert status == 0, err
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back["meta"] == meta
    assert all(torch.equal(back["model"][k], v) for k, v in model.state_dict().items())
    status, _, err = run_main(capsys, "convert", "from-caffe", tmp_path / "seed.caffemodel", tmp_path / "x.pth",
                              "--kind", "seed", "--width", "0.25")
    assert status == 2 and "check --kind, --net and --width" in err
    status, _, err = run_main(capsys, "convert", "from-caffe", tmp_path / "seed.caffemodel", tmp_path / "x.pth",
                              "--kind", "segmentation")
    assert status == 2 and "no conv1_1 or fc8 layer" in err
    save_checkpoint(tmp_path / "effnet.pth", model, dict(meta, net="GAP-EffNet"))
    status, _, err = run_main(capsys, "convert", "to-caffe", tmp_path / "effnet.pth", tmp_path / "e.caffemodel")
    assert status == 2 and "GAP-EffNet" in err


def test_convert_cli_torchvision(tmp_path, capsys):
    torch.save(torchvision_like_state(), tmp_path / "vgg16.pth")
    status, _, err = run_main(capsys, "convert", "from-torchvision", tmp_path / "vgg16.pth", tmp_path / "init.pth")
    assert status == 0, err
    report = load_init(make_net("DeepLab-LargeFOV"), tmp_path / "init.pth")
    assert report[0].startswith("loaded 26 of 32")  # conv1_1..conv5_3; fc6, fc7, fc8 are new
