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

from fixtures import vgg16_caffemodel

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
    return torch.from_numpy((bgr - cm.MEAN_BGR[:, None, None]).astype(np.float32))


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


def test_the_releases_init_name_is_told_which_file_it_is(tmp_path):
    """The release's --init VGG_ILSVRC_16_layers (script.py's value, its default) named data/<stage>/<name>.caffemodel;
    here it was read as a file of that name, and the fix given, ./downloads.sh --models, left it missing."""
    from guidedlabelling.config import ROOT
    from guidedlabelling.preflight import as_both_commands
    from guidedlabelling.weights import read_state
    with pytest.raises(InputError) as e:
        read_state(tmp_path / "VGG_ILSVRC_16_layers-deeplab")
    assert e.value.messages == (
        f"{tmp_path}/VGG_ILSVRC_16_layers-deeplab: initial weights not found; the release's --init named them "
        f"without folder and suffix: pass --init {ROOT}/models/VGG_ILSVRC_16_layers-deeplab.caffemodel",)
    with pytest.raises(InputError, match="missing.caffemodel: initial weights not found; run ./downloads.sh"):
        read_state(tmp_path / "missing.caffemodel")
    with pytest.raises(InputError) as mine:   # a file of yours given without its suffix is not the release's
        read_state(tmp_path / "weights_final")
    assert mine.value.messages == (f"{tmp_path}/weights_final: initial weights not found; run ./downloads.sh "
                                   "--models, or pass --init none to train from scratch",)
    assert as_both_commands(e.value.messages[0], "seg_train").endswith(
        f"pass --init {ROOT}/models/VGG_ILSVRC_16_layers-deeplab.caffemodel (./script.py: --set "
        f"seg_train.init={ROOT}/models/VGG_ILSVRC_16_layers-deeplab.caffemodel)")


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
        assert time.monotonic() - start < 10   # not a speed goal: huge declared sizes are refused before a read


def test_fuzz_mutations(tmp_path):
    """Random mutations of small valid files: tensors or InputError, nothing else, and no hang."""
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
    assert time.monotonic() - start < 120   # not a speed goal (well under 1 s): no mutation makes the reader hang


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
    x = rgb.flip(1) - torch.from_numpy(cm.MEAN_BGR).float()[:, None, None]
    ours = F.conv2d(x, caffe["conv1_1.weight"], caffe["conv1_1.bias"], padding=1)
    scale = theirs.abs().max()
    assert (ours - theirs)[..., 1:-1, 1:-1].abs().max() < 1e-5 * scale  # exact inside
    assert (ours - theirs).abs().max() < 0.05 * scale  # the border sees another padding colour
    assert torch.equal(caffe["conv2_1.weight"], state["features.5.weight"])


def test_torchvision_rejects_other_state_dicts():
    with pytest.raises(InputError, match="not a torchvision VGG-16"):
        cm.torchvision_vgg16_to_caffe({"conv1_1.weight": torch.zeros(4, 3, 3, 3)}, "x.pth")


def test_torchvision_vgg16_bn_is_refused():
    """vgg16_bn's 13 convs were converted without their batch norms (features.N+1): another network, silently."""
    state, cin = {}, 3
    channels = [round(c * WIDTH) for c, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)] for _ in range(n)]
    for i, cout in zip([0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40], channels):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = torch.randn(cout, cin, 3, 3), torch.randn(cout)
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"features.{i + 1}.{name}"] = torch.ones(cout)
        cin = cout
    with pytest.raises(InputError) as e:
        cm.torchvision_vgg16_to_caffe(state, "vgg16_bn.pth")
    assert e.value.messages == ("vgg16_bn.pth: torchvision's VGG-16 with batch norms (vgg16_bn: "
                                "features.1.running_mean, ...), which our VGG-16 has not; pass torchvision's "
                                "vgg16 weights",)


# ---- command lines ----

def test_scripts_run_from_the_repo_root():
    for script in ("caffe/list_layers.py", "caffe/convert.py"):
        assert os.access(ROOT / script, os.X_OK), script
        done = subprocess.run([sys.executable, script, "-h"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def cli(name):
    """A script of caffe/ as a module, run in this process."""
    spec = importlib.util.spec_from_file_location(f"caffe_{name}_cli", ROOT / "caffe" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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


def test_list_layers_cli(tmp_path, capsys):
    v1 = tmp_path / "v1.caffemodel"
    v1.write_bytes(v1_file())
    prototxt = tmp_path / "p.prototxt"
    prototxt.write_text('layer { name: "score" type: "InnerProduct" }\n')
    status, out, _ = run_main(capsys, "list_layers", v1)
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [
        {"name": "conv1_1", "type": "Convolution", "blobs": [[2, 3, 1, 1], [1, 1, 1, 2]]},
        {"name": "score", "type": "InnerProduct", "blobs": [[1, 1, 4, 2]]}]
    status, out, err = run_main(capsys, "list_layers", v1, "--prototxt", prototxt)
    assert status == 0 and len(out.splitlines()) == 1 and "conv1_1" in err
    status, _, err = run_main(capsys, "list_layers", prototxt)
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
    blocked = tmp_path / "classes.txt" / "seed.caffemodel"   # a folder that is a file: the system refuses the write
    status, _, err = run_main(capsys, "convert", "from-caffe", tmp_path / "seed.caffemodel", blocked, "--kind", "seed")
    assert status == 2 and err.startswith(f"error: {blocked.parent}: File exists; a file stands where a folder is "
                                          "needed") and "Traceback" not in err, err


def test_convert_from_caffe_refuses_a_net_of_the_other_kind(tmp_path, capsys):
    """--net DeepLab-LargeFOV with --kind seed (a GAP net with a segmenter's kind) was a traceback of the registry."""
    export(tmp_path, make_net("GAP-HighRes"), "seed")
    for kind, net, nets in (("seed", "DeepLab-LargeFOV", "GAP-HighRes, GAP-LowRes or GAP-DeepLab"),
                            ("saliency", "GAP-HighRes", "DeepLab-LargeFOV")):
        status, _, err = run_main(capsys, "convert", "from-caffe", tmp_path / "seed.caffemodel", tmp_path / "x.pth",
                                  "--kind", kind, "--net", net)
        assert (status, err) == (2, f"error: {tmp_path}/seed.caffemodel: --net {net} is not a {kind} network; "
                                    f"pass --net {nets}\n")
    assert not (tmp_path / "x.pth").exists()


def test_convert_from_caffe_keeps_fc6s_dilation(tmp_path, capsys):
    """A segmenter trained with fc6_dilation 6 came back from its Caffe files as one of 12 (the file's dilation was
    not read, the meta had none): other outputs, silently. A file that gives none (weights only, or deeplab-public's
    `hole` field) keeps LargeFOV's 12."""
    from guidedlabelling.inference import load_model
    torch.manual_seed(0)
    model = DeepLabLargeFOV(2, WIDTH, fc6_dilation=6).eval()
    meta = {"kind": "saliency", "net": "DeepLab-LargeFOV", "width": WIDTH, "fc6_dilation": 6, "classes": ["bg", "fg"]}
    save_checkpoint(tmp_path / "model.pth", model, meta)
    for args in (("to-caffe", tmp_path / "model.pth", tmp_path / "sal.caffemodel"),
                 ("from-caffe", tmp_path / "sal.caffemodel", tmp_path / "back.pth", "--kind", "saliency")):
        assert run_main(capsys, "convert", *args)[0] == 0
    back, back_meta = load_model(tmp_path / "back.pth", "saliency")
    assert back_meta["fc6_dilation"] == 6 and back.trunk.fc6.dilation == (6, 6)
    assert torch.equal(forward(back.eval(), caffe_input())[0], forward(model, caffe_input())[0])
    weights_only = cm.NetParameter()
    weights_only.ParseFromString((tmp_path / "sal.caffemodel").read_bytes())
    for layer in weights_only.layer:
        layer.ClearField("convolution_param")
    (tmp_path / "sal.caffemodel").write_bytes(weights_only.SerializeToString())
    assert run_main(capsys, "convert", "from-caffe", tmp_path / "sal.caffemodel", tmp_path / "back.pth",
                    "--kind", "saliency")[0] == 0
    assert load_model(tmp_path / "back.pth", "saliency")[1]["fc6_dilation"] == 12


def test_to_caffe_refuses_one_path_for_both_files(tmp_path, capsys):
    """to-caffe model.pth net.prototxt (the deploy file named for the model) wrote the weights, then the deploy net
    over them, and said it wrote both."""
    save_checkpoint(tmp_path / "model.pth", make_net("GAP-HighRes"),
                    {"kind": "seed", "net": "GAP-HighRes", "width": WIDTH, "classes": [f"c{i}" for i in range(21)]})
    for out, flags in (("net.prototxt", ()), ("net.caffemodel", ("--prototxt", tmp_path / "net.caffemodel"))):
        status, _, err = run_main(capsys, "convert", "to-caffe", tmp_path / "model.pth", tmp_path / out, *flags)
        assert (status, err) == (2, f"error: {tmp_path}/{out}: both the weights and the deploy net would be written "
                                    "to this one file; name the weights *.caffemodel, or --prototxt another file\n")
    assert not list(tmp_path.glob("net.*"))


def test_to_caffe_refuses_an_input_side_no_network_takes(tmp_path, capsys):
    """--input-size 0 or -5 wrote an Input layer of that side, which Caffe and OpenCV refuse when they load it."""
    save_checkpoint(tmp_path / "model.pth", make_net("GAP-HighRes"),
                    {"kind": "seed", "net": "GAP-HighRes", "width": WIDTH, "classes": [f"c{i}" for i in range(21)]})
    for side in ("0", "-5"):
        status, _, err = run_main(capsys, "convert", "to-caffe", tmp_path / "model.pth", tmp_path / "net.caffemodel",
                                  "--input-size", side)
        assert status == 2 and err.endswith(f"argument --input-size: {side}: must be at least 16\n"), err
    assert not list(tmp_path.glob("net.*"))


def test_convert_cli_torchvision(tmp_path, capsys):
    torch.save(torchvision_like_state(), tmp_path / "vgg16.pth")
    status, _, err = run_main(capsys, "convert", "from-torchvision", tmp_path / "vgg16.pth", tmp_path / "init.pth")
    assert status == 0, err
    report = load_init(make_net("GAP-HighRes"), tmp_path / "init.pth")
    assert report[0].startswith("loaded 26 of 31")  # conv1_1..conv5_3; fc6_gap, fc7_gap, score are new
    with pytest.raises(InputError, match="trunk.fc6.weight"):  # DeepLab's fc6/fc7 are pretrained layers
        load_init(make_net("DeepLab-LargeFOV"), tmp_path / "init.pth")
    assert load_init(make_net("DeepLab-LargeFOV"), tmp_path / "init.pth", partial=True)[0].startswith("loaded 26")


# ---- DeepLab-LargeFOV's init from VGG-16 (downloads.sh --models), strict inits ----

def test_deeplab_init_decimates_fc6_and_fc7_by_hand(tmp_path):
    vgg = vgg16_caffemodel(tmp_path / "vgg.caffemodel")
    ours = cm.deeplab_init_from_vgg16(vgg)
    c = vgg["conv5_3.weight"].shape[0]
    assert ours["fc6.weight"].shape == (64, c, 3, 3) and ours["fc7.weight"].shape == (64, 64, 1, 1)
    rng = np.random.default_rng(0)
    for _ in range(200):  # every third position of the 7x7 kernel, every fourth filter
        k, ch, i, j = rng.integers(64), rng.integers(c), rng.integers(3), rng.integers(3)
        assert ours["fc6.weight"][k, ch, i, j] == vgg["fc6.weight"][4 * k, ch * 49 + 3 * i * 7 + 3 * j]
        m = rng.integers(64)
        assert ours["fc7.weight"][k, m, 0, 0] == vgg["fc7.weight"][4 * k, 4 * m]
    assert torch.equal(ours["fc6.bias"], vgg["fc6.bias"][::4]) and "fc8.weight" not in ours


def test_deeplab_init_at_full_size_is_the_usual_reading():
    """Against the reading public re-implementations use (tests/release_reference.py; no DeepLab code exists)."""
    import release_reference as R
    g = torch.Generator().manual_seed(0)
    vgg = {"conv5_3.weight": torch.zeros(512, 1, 1, 1), "fc6.weight": torch.randn(4096, 25088, generator=g).half(),
           "fc6.bias": torch.randn(4096), "fc7.weight": torch.randn(4096, 4096, generator=g).half(),
           "fc7.bias": torch.randn(4096)}
    ours = cm.deeplab_init_from_vgg16(vgg)
    theirs = R.deeplab_largefov_init_from_vgg16(vgg["fc6.weight"].numpy(), vgg["fc6.bias"].numpy(),
                                                vgg["fc7.weight"].numpy(), vgg["fc7.bias"].numpy())
    for got, want in zip([ours[k] for k in ("fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias")], theirs):
        assert np.array_equal(got.numpy(), want)


def test_deeplab_init_round_trip_and_every_layer_accounted_for(tmp_path, capsys):
    vgg = vgg16_caffemodel(tmp_path / "vgg.caffemodel")
    status, _, err = run_main(capsys, "convert", "deeplab-init", tmp_path / "vgg.caffemodel",
                              tmp_path / "deeplab.caffemodel")
    assert status == 0, err
    written = cm.caffe_state_dict(tmp_path / "deeplab.caffemodel")
    derived = cm.deeplab_init_from_vgg16(vgg)
    assert written.keys() == derived.keys() and all(torch.equal(written[k], derived[k]) for k in derived)
    for model in (DeepLabLargeFOV(21, WIDTH), GAPNet("GAP-DeepLab", 20, WIDTH)):
        report = load_init(model, tmp_path / "deeplab.caffemodel")
        left_out = [line for line in report[1:]]
        assert all(line.endswith("(a new layer)") for line in left_out), left_out   # fc8 / score only
        assert len(left_out) == (2 if isinstance(model, DeepLabLargeFOV) else 1)


def test_deeplab_init_of_a_file_that_is_not_vgg16_is_one_line_naming_it(tmp_path, capsys):
    """deeplab-init of a file without fc6 (a seed network's) was a KeyError traceback, one with a misshapen conv a
    RuntimeError of load_state_dict, and a -deeplab file given again an error that named no file."""
    vgg16_caffemodel(tmp_path / "vgg.caffemodel")
    export(tmp_path, make_net("GAP-HighRes"), "seed")
    net = cm.read_caffemodel(tmp_path / "vgg.caffemodel")
    del net.layer[5].blobs[0].shape.dim[2:]
    net.layer[5].blobs[0].shape.dim.extend([1, 9])   # conv3_2: 3x3 -> 1x9, the same values
    (tmp_path / "bad.caffemodel").write_bytes(net.SerializeToString())
    assert run_main(capsys, "convert", "deeplab-init", tmp_path / "vgg.caffemodel", tmp_path / "dl.caffemodel")[0] == 0
    for name, problem in (
            ("seed", "not VGG-16's layers (fc6.weight missing, fc6.bias missing, fc7.weight missing, ...)"),
            ("bad", "not VGG-16's layers (conv3_2.weight (16, 16, 1, 9), want (16, 16, 3, 3))"),
            ("dl", "fc6 (64, 32, 3, 3) / fc7 (64, 64, 1, 1): not VGG-16's fully connected layers on 32 x 7 x 7 "
                   "features")):
        status, _, err = run_main(capsys, "convert", "deeplab-init", tmp_path / f"{name}.caffemodel",
                                  tmp_path / "out.caffemodel")
        assert (status, err) == (2, f"error: {tmp_path}/{name}.caffemodel: {problem}; pass "
                                    "VGG_ILSVRC_16_layers.caffemodel\n")
    assert not (tmp_path / "out.caffemodel").exists()


def test_the_preflight_refuses_an_init_that_does_not_fit_before_any_step_runs(tmp_path):
    """A wrong init file for the segmenter stopped its training only, after every earlier step had run (on VOC, the
    seed and saliency trainings); the preflight read the file but did not try it on the network."""
    vgg16_caffemodel(tmp_path / "vgg.caffemodel")
    driver = [sys.executable, str(ROOT / "script.py"), "--config", "smoke", "--out_root", str(tmp_path / "runs")]
    proc = subprocess.run(driver + ["--set", f"seg_train.init={tmp_path}/vgg.caffemodel"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "==>" not in proc.stdout and not (tmp_path / "runs").exists()
    assert proc.stderr.startswith(f"error: {tmp_path}/vgg.caffemodel: leaves 4 tensors of the pretrained trunk "
                                  "unloaded: trunk.fc6.weight (shape (256, 1568) != (64, 32, 3, 3))"), proc.stderr
    assert proc.stderr.rstrip().endswith("or --init_partial (./script.py: --set seg_train.init_partial=true) to keep "
                                         "them random"), proc.stderr
    # GAP-DeepLab reads the '-deeplab' file beside the one named (the release's get_initmodel): that one is checked
    proc = subprocess.run(driver + ["--set", "seed_train.net=GAP-DeepLab", "--set",
                                    f"seed_train.init={tmp_path}/vgg.caffemodel"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {tmp_path}/vgg-deeplab.caffemodel: initial "
                                                           "weights not found"), proc.stderr
    assert "==>" not in proc.stdout and not (tmp_path / "runs").exists()   # (its step found it missing before)


def test_the_releases_init_name_in_a_folder_of_yours_is_told_the_file_beside_it(tmp_path):
    """--init my/VGG_ILSVRC_16_layers beside my/VGG_ILSVRC_16_layers.caffemodel was told to pass models/'s, which
    only ./downloads.sh --models makes."""
    from guidedlabelling.weights import read_state
    (tmp_path / "VGG_ILSVRC_16_layers.caffemodel").write_bytes(b"")
    with pytest.raises(InputError) as e:
        read_state(tmp_path / "VGG_ILSVRC_16_layers")
    assert e.value.messages == (
        f"{tmp_path}/VGG_ILSVRC_16_layers: initial weights not found; the release's --init named them without folder "
        f"and suffix: pass --init {tmp_path}/VGG_ILSVRC_16_layers.caffemodel",)


def test_gap_deeplabs_missing_deeplab_init_says_why_it_was_read(tmp_path):
    """GAP-DeepLab given --init X.caffemodel reads X-deeplab.caffemodel (the release's get_initmodel); where that was
    missing the error named a file the user never gave and told them to download it, beside the X they had."""
    from guidedlabelling.weights import read_state
    (tmp_path / "seed.caffemodel").write_bytes(b"")
    with pytest.raises(InputError) as e:
        read_state(tmp_path / "seed-deeplab.caffemodel")
    assert e.value.messages == (
        f"{tmp_path}/seed-deeplab.caffemodel: initial weights not found; the DeepLab nets start from a '-deeplab' "
        "file (GAP-DeepLab reads it beside the --init given, as the release did): make it from seed.caffemodel with "
        f"./caffe/convert.py deeplab-init {tmp_path}/seed.caffemodel {tmp_path}/seed-deeplab.caffemodel (a VGG-16), "
        "or name a GAP-DeepLab model's file *-deeplab.caffemodel",)
    with pytest.raises(InputError, match="other-deeplab.caffemodel: initial weights not found; run ./downloads.sh"):
        read_state(tmp_path / "other-deeplab.caffemodel")   # nothing beside it: the usual fix


def test_a_prototxt_given_as_init_is_told_to_pass_the_caffemodel(tmp_path):
    """--init net.prototxt (the deploy file beside a .caffemodel) was 'unreadable weights (UnpicklingError);
    re-download or retrain'."""
    from guidedlabelling.weights import read_state
    _, prototxt = export(tmp_path, make_net("GAP-HighRes"))
    with pytest.raises(InputError) as e:
        read_state(prototxt)
    assert e.value.messages == (f"{prototxt}: a Caffe net definition, which holds no weights; pass the .caffemodel "
                                "of its weights",)


def test_an_init_that_leaves_trunk_layers_random_is_an_error(tmp_path):
    vgg16_caffemodel(tmp_path / "vgg.caffemodel")
    with pytest.raises(InputError, match=r"leaves 4 tensors of the pretrained trunk unloaded: trunk\.fc6\.weight "
                                         r"\(shape \(256, 1568\) != \(64, 32, 3, 3\)\)"):
        load_init(DeepLabLargeFOV(21, WIDTH), tmp_path / "vgg.caffemodel")
    report = load_init(DeepLabLargeFOV(21, WIDTH), tmp_path / "vgg.caffemodel", partial=True)   # --init_partial
    assert report[0].startswith("loaded 26 of 32") and any("trunk.fc7.weight" in line for line in report)
    assert load_init(GAPNet("GAP-HighRes", 20, WIDTH), tmp_path / "vgg.caffemodel")[0].startswith("loaded 26 of 31")


def test_gap_deeplab_starts_from_the_deeplab_init_as_the_release():
    from guidedlabelling.stages.seed_train import init_file
    assert init_file("GAP-DeepLab", "models/VGG_ILSVRC_16_layers.caffemodel") == \
        "models/VGG_ILSVRC_16_layers-deeplab.caffemodel"
    assert init_file("GAP-HighRes", "models/VGG_ILSVRC_16_layers.caffemodel") == \
        "models/VGG_ILSVRC_16_layers.caffemodel"
    assert init_file("GAP-DeepLab", "models/x-deeplab.caffemodel") == "models/x-deeplab.caffemodel"


# ---- DeepLab's own Caffe files (V1 layer types of deeplab-public) ----

DEEPLAB_V1_TYPES = {39: "ImageSegData", 40: "SegAccuracy", 41: "Interp", 42: "Padding", 43: "MatWrite",
                    44: "MatRead", 45: "DenseCrf", 56: "Onehot"}  # deeplab-public's caffe.proto (DeepLab-Context)


def test_deeplab_v1_prototxt_reads(tmp_path, caplog):
    path = tmp_path / "train.prototxt"
    path.write_text('name: "deeplab-largefov"\n'
                    'layers { name: "data" type: IMAGE_SEG_DATA top: "data" top: "label"\n'
                    '  image_data_param { root_folder: "/x" source: "list.txt" batch_size: 10 } }\n'
                    'layers { name: "fc6" type: CONVOLUTION bottom: "pool5" top: "fc6"\n'
                    '  convolution_param { num_output: 1024 pad: 12 hole: 12 kernel_size: 3 } }\n'
                    'layers { name: "label_shrink" type: INTERP bottom: "label" top: "label_shrink"\n'
                    '  interp_param { shrink_factor: 8 pad_beg: 0 pad_end: 0 } }\n'
                    'layers { name: "accuracy" type: SEG_ACCURACY bottom: "fc8" bottom: "label_shrink"\n'
                    '  seg_accuracy_param { ignore_label: 255 } }\n'
                    'layers { name: "crf" type: DENSE_CRF bottom: "fc8" }\n'
                    'layers { name: "odd" type: SOMETHING_NEW bottom: "fc8" }\n')
    net = cm.read_prototxt(path)
    assert [cm.layer_type(layer) for layer in net.layers] == ["ImageSegData", "Convolution", "Interp",
                                                               "SegAccuracy", "DenseCrf", "UNKNOWN_SOMETHING_NEW"]
    assert net.layers[1].convolution_param.num_output == 1024
    assert "SOMETHING_NEW" in caplog.text


def v1_layer(name, type_number, blobs=()):
    return lfield(2, sfield(4, name) + vfield(5, type_number) + b"".join(lfield(6, b) for b in blobs))


def test_deeplab_v1_binary_types_and_no_weights_dropped_silently(tmp_path, caplog):
    conv = v1_layer("conv1_1", 4, [legacy_blob([2, 1, 1, 1], [1, 2]), legacy_blob([1, 1, 1, 2], [0.5, 0.25])])
    deconv = v1_layer("upsample", 39, [legacy_blob([1, 1, 2, 2], [1, 1, 1, 1])])   # BVLC's DECONVOLUTION: weights
    path = tmp_path / "deeplab.caffemodel"
    path.write_bytes(sfield(1, "x") + conv + deconv + b"".join(v1_layer(f"l{n}", n) for n in DEEPLAB_V1_TYPES)
                     + v1_layer("mystery", 77, [legacy_blob([1, 1, 1, 3], [1, 2, 3])]))
    layers = cm.net_layers(cm.read_caffemodel(path))
    types = {layer.name: cm.layer_type(layer) for layer in layers}
    assert types["upsample"] == "Deconvolution" and types["mystery"] == "UNKNOWN_77"
    assert all(types[f"l{n}"] == name for n, name in DEEPLAB_V1_TYPES.items())
    state = cm.caffe_state_dict(path)
    assert list(state) == ["conv1_1.weight", "conv1_1.bias"]
    assert "upsample (Deconvolution, 1 blobs)" in caplog.text and "mystery (UNKNOWN_77, 1 blobs)" in caplog.text
