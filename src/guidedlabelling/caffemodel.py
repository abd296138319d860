"""Caffe files: read .caffemodel / .prototxt nets, write our networks as Caffe nets.

No protoc here: SCHEMA is the subset of BVLC caffe.proto we need (real field numbers, so real
files parse; fields we leave out are kept as unknown fields) and becomes protobuf classes at import.
Reading handles the current `layer` (V2) and the legacy `layers` (V1) encodings, blobs with `shape`
or legacy num/channels/height/width, float or double data. The V1 layer types are BVLC's and DeepLab's (its
Caffe fork, deeplab-public, as its history is kept in TheLegendAli/DeepLab-Context: IMAGE_SEG_DATA = 39 ...
ONEHOT = 56; 39 is also BVLC's DECONVOLUTION); other V1 types are read as UNKNOWN_<number or name>, with a
warning.
"""
import logging
import math
import re
from pathlib import Path

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from .errors import some
from .io import InputError, atomic_path
from .networks.vgg import MEAN_BGR, VGG_BLOCKS, DeepLabLargeFOV, DeepLabTrunk, GAPNet, conv_names

SCHEMA = """
message BlobShape { repeated int64 dim = 1 [packed = true]; }
message BlobProto {
  optional BlobShape shape = 7;
  repeated float data = 5 [packed = true];
  repeated double double_data = 8 [packed = true];
  optional int64 num = 1; optional int64 channels = 2; optional int64 height = 3; optional int64 width = 4;
}
message NetParameter {
  optional string name = 1;
  repeated string input = 3;
  repeated BlobShape input_shape = 8;
  repeated int64 input_dim = 4;
  repeated LayerParameter layer = 100;
  repeated V1LayerParameter layers = 2;
}
message LayerParameter {
  optional string name = 1; optional string type = 2; repeated string bottom = 3; repeated string top = 4;
  repeated BlobProto blobs = 7;
  optional ConvolutionParameter convolution_param = 106;
  optional DropoutParameter dropout_param = 108;
  optional InnerProductParameter inner_product_param = 117;
  optional InputParameter input_param = 143;
  optional PoolingParameter pooling_param = 121;
  optional ReLUParameter relu_param = 123;
}
message V1LayerParameter {
  repeated string bottom = 2; repeated string top = 3; optional string name = 4;
  optional LayerType type = 5;
  repeated BlobProto blobs = 6;
  optional ConvolutionParameter convolution_param = 10;
  optional DropoutParameter dropout_param = 12;
  optional InnerProductParameter inner_product_param = 17;
  optional PoolingParameter pooling_param = 19;
  optional ReLUParameter relu_param = 30;
}
enum LayerType {
  NONE = 0; ABSVAL = 35; ACCURACY = 1; ARGMAX = 30; BNLL = 2; CONCAT = 3; CONTRASTIVE_LOSS = 37;
  CONVOLUTION = 4; DATA = 5; DECONVOLUTION = 39; DROPOUT = 6; DUMMY_DATA = 32; EUCLIDEAN_LOSS = 7;
  ELTWISE = 25; EXP = 38; FLATTEN = 8; HDF5_DATA = 9; HDF5_OUTPUT = 10; HINGE_LOSS = 28; IM2COL = 11;
  IMAGE_DATA = 12; INFOGAIN_LOSS = 13; INNER_PRODUCT = 14; LRN = 15; MEMORY_DATA = 29;
  MULTINOMIAL_LOGISTIC_LOSS = 16; MVN = 34; POOLING = 17; POWER = 26; RELU = 18; SIGMOID = 19;
  SIGMOID_CROSS_ENTROPY_LOSS = 27; SILENCE = 36; SOFTMAX = 20; SOFTMAX_LOSS = 21; SPLIT = 22;
  SLICE = 33; TANH = 23; WINDOW_DATA = 24; THRESHOLD = 31;
  option allow_alias = true;
  IMAGE_SEG_DATA = 39; SEG_ACCURACY = 40; INTERP = 41; PADDING = 42; MAT_WRITE = 43; MAT_READ = 44;
  DENSE_CRF = 45; DOMINANT_CHANNEL = 46; BIAS_CHANNEL = 47; UNIQUE_LABEL = 48; CENSOR_LABEL = 49;
  ADAPTIVE_BIAS_CHANNEL = 50; CHANNEL_AGGREGATOR = 51; IGNORE_OVERLAY = 52; HISTOGRAM = 53; RELATIVE_ERROR = 54;
  GAIN_CHANNEL = 55; ONEHOT = 56;
}
message ConvolutionParameter {
  optional uint32 num_output = 1; optional bool bias_term = 2 [default = true];
  repeated uint32 pad = 3; repeated uint32 kernel_size = 4; repeated uint32 stride = 6;
  repeated uint32 dilation = 18; optional uint32 group = 5 [default = 1];
  optional uint32 pad_h = 9; optional uint32 pad_w = 10; optional uint32 kernel_h = 11;
  optional uint32 kernel_w = 12; optional uint32 stride_h = 13; optional uint32 stride_w = 14;
}
enum PoolMethod { MAX = 0; AVE = 1; STOCHASTIC = 2; }
message PoolingParameter {
  optional PoolMethod pool = 1 [default = MAX];
  optional uint32 pad = 4; optional uint32 kernel_size = 2; optional uint32 stride = 3 [default = 1];
  optional uint32 pad_h = 9; optional uint32 pad_w = 10; optional uint32 kernel_h = 5;
  optional uint32 kernel_w = 6; optional uint32 stride_h = 7; optional uint32 stride_w = 8;
  optional bool global_pooling = 12;
}
message InnerProductParameter {
  optional uint32 num_output = 1; optional bool bias_term = 2 [default = true];
  optional int32 axis = 5 [default = 1]; optional bool transpose = 6;
}
message DropoutParameter { optional float dropout_ratio = 1 [default = 0.5]; }
message InputParameter { repeated BlobShape shape = 1; }
message ReLUParameter { optional float negative_slope = 1; }
"""

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {"int32": FDP.TYPE_INT32, "int64": FDP.TYPE_INT64, "uint32": FDP.TYPE_UINT32, "bool": FDP.TYPE_BOOL,
           "float": FDP.TYPE_FLOAT, "double": FDP.TYPE_DOUBLE, "string": FDP.TYPE_STRING}
LABELS = {"optional": FDP.LABEL_OPTIONAL, "repeated": FDP.LABEL_REPEATED}


def schema_descriptor(text):
    """A FileDescriptorProto of package `caffe` from proto2 text: flat messages and enums, no nesting."""
    fd = descriptor_pb2.FileDescriptorProto(name="caffe_subset.proto", package="caffe", syntax="proto2")
    blocks = re.findall(r"(message|enum)\s+(\w+)\s*\{(.*?)\}", text, re.S)
    enums = {name for kind, name, _ in blocks if kind == "enum"}
    for kind, name, body in blocks:
        if kind == "enum":
            enum = fd.enum_type.add(name=name)
            enum.value.extend(descriptor_pb2.EnumValueDescriptorProto(name=v, number=int(n))
                              for v, n in re.findall(r"(\w+) = (\d+);", body))
            enum.options.allow_alias = "allow_alias = true" in body
            continue
        message = fd.message_type.add(name=name)
        for label, type_, field, number, options in re.findall(
                r"(optional|repeated) (\w+) (\w+) = (\d+)(?: \[(.*?)\])?;", body):
            f = message.field.add(name=field, number=int(number), label=LABELS[label])
            if type_ in SCALARS:
                f.type = SCALARS[type_]
            else:
                f.type, f.type_name = (FDP.TYPE_ENUM if type_ in enums else FDP.TYPE_MESSAGE), f".caffe.{type_}"
            for key, value in re.findall(r"(\w+) = (\w[\w.]*)", options):
                if key == "packed":
                    f.options.packed = True
                else:
                    f.default_value = value
    return fd


def message_classes(schema, names):
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema_descriptor(schema))
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in names]


NetParameter, BlobProto = message_classes(SCHEMA, ("NetParameter", "BlobProto"))
V1_NAMES = set(NetParameter.DESCRIPTOR.fields_by_name["layers"].message_type.fields_by_name["type"]
               .enum_type.values_by_name)
V1_TYPE_FIELD = 5  # V1LayerParameter.type
UNKNOWN_BASE = 1000  # numbers given to V1 type names of a prototxt that neither BVLC nor DeepLab knows
LOG = logging.getLogger(__name__)
V1_TO_V2 = {"ABSVAL": "AbsVal", "ARGMAX": "ArgMax", "BNLL": "BNLL", "HDF5_DATA": "HDF5Data",
            "HDF5_OUTPUT": "HDF5Output", "IM2COL": "Im2col", "LRN": "LRN", "MVN": "MVN", "RELU": "ReLU",
            "SOFTMAX_LOSS": "SoftmaxWithLoss", "TANH": "TanH"}
# A binary NetParameter starts with the tag of one of its fields: name, layers, input, input_dim
# (varint or packed), force_backward, state, debug_info, input_shape, layer (tag 802 = A2 06).
NET_FIRST_BYTES = {0x0A, 0x12, 0x1A, 0x20, 0x22, 0x28, 0x32, 0x38, 0x42, 0xA2}
MAX_BLOB_AXES = 32  # Caffe's kMaxBlobAxes
CAFFE_NETS = ("GAP-HighRes", "GAP-LowRes", "GAP-DeepLab", "DeepLab-LargeFOV")  # those deploy_net writes
POOL_MAX, POOL_AVE = 0, 1  # PoolMethod values


# ---- reading ----

def read_caffemodel(path):
    """The NetParameter of a binary .caffemodel; InputError naming the file if it is not one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read the Caffe model ({e.strerror}); check the path") from None
    if not raw or raw[0] not in NET_FIRST_BYTES:
        start = f"starts with byte 0x{raw[0]:02x}" if raw else "is empty"
        raise InputError(f"{path}: not a binary Caffe model (file {start}; a .prototxt, HDF5 .caffemodel.h5 "
                         "or .pth is not one); pass a binary .caffemodel")
    net = NetParameter()
    try:
        net.ParseFromString(raw)
    except DecodeError:
        raise InputError(f"{path}: corrupt or truncated Caffe model (protobuf does not parse); "
                         "re-download or re-export it") from None
    if len(net.layer) and len(net.layers):
        raise InputError(f"{path}: has both V2 `layer` and V1 `layers` entries, which Caffe rejects; re-export it")
    unknown = [f"{layer.name} ({layer_type(layer)})" for layer in net.layers if layer_type(layer).startswith("UNKNOWN")]
    if unknown:
        LOG.warning("%s: V1 layer types that neither BVLC nor DeepLab defines: %s", path, ", ".join(unknown))
    return net


def read_prototxt(path):
    """A text-format net definition; fields outside SCHEMA (data layers, solver settings) are skipped. V1 layer
    types no known Caffe defines are read too (a schema extended by them), named UNKNOWN_<NAME>, with a warning."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable prototxt ({e}); fix or re-export it") from None
    unknown = sorted(set(re.findall(r"\btype\s*:\s*([A-Z][A-Z0-9_]*)\b", text)) - V1_NAMES)
    net_class = NetParameter
    if unknown:
        LOG.warning("%s: V1 layer types %s are neither BVLC's nor DeepLab's; read as UNKNOWN_<type>", path,
                    ", ".join(unknown))
        extra = "".join(f"  {name} = {UNKNOWN_BASE + k};\n" for k, name in enumerate(unknown))
        net_class, = message_classes(SCHEMA.replace("  option allow_alias = true;", extra + "  option allow_alias = true;"),
                                     ("NetParameter",))
    net = net_class()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as e:
        raise InputError(f"{path}: unreadable prototxt ({str(e).splitlines()[0]}); fix or re-export it") from None
    return net


def net_layers(net):
    return list(net.layers) if len(net.layers) else list(net.layer)


def layer_type(layer):
    """The V2 type string; a V1 layer's enum (e.g. INNER_PRODUCT) becomes its V2 name (InnerProduct). V1 number 39
    is BVLC's Deconvolution when the layer has weights or a convolution_param, else DeepLab's ImageSegData."""
    if layer.DESCRIPTOR.name == "LayerParameter":
        return layer.type
    if not layer.HasField("type"):
        raw = [f.data for f in UnknownFieldSet(layer) if f.field_number == V1_TYPE_FIELD]
        return f"UNKNOWN_{raw[0]}" if raw else "NONE"
    name = layer.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[layer.type].name
    if layer.type >= UNKNOWN_BASE:
        return f"UNKNOWN_{name}"
    if name == "DECONVOLUTION" and not (len(layer.blobs) or layer.HasField("convolution_param")):
        name = "IMAGE_SEG_DATA"
    return V1_TO_V2.get(name, name.title().replace("_", ""))


def blob_dims(blob, where):
    """Blob dims (legacy num/channels/height/width when set, as Caffe reads them), checked against its data."""
    legacy = [blob.num, blob.channels, blob.height, blob.width]
    dims = legacy if any(blob.HasField(f) for f in ("num", "channels", "height", "width")) else list(blob.shape.dim)
    values = len(blob.double_data) or len(blob.data)
    if not 0 < len(dims) <= MAX_BLOB_AXES or min(dims) < 1 or math.prod(dims) != values:
        raise InputError(f"{where}: blob shape {dims[:MAX_BLOB_AXES]} does not fit its {values} values; "
                         "the file is corrupt: re-download or re-export it")
    return dims


def blob_array(blob, where):
    dims = blob_dims(blob, where)
    if len(blob.double_data):
        return np.asarray(blob.double_data, np.float64).reshape(dims)
    return np.asarray(blob.data, np.float32).reshape(dims)


def caffe_state_dict(path, net=None):
    """Convolution and InnerProduct weights as {'<layer>.weight': ..., '<layer>.bias': ...} (Caffe layer names).

    InnerProduct weights come out [out, in] (legacy 1x1xOUTxIN blobs and transpose: true undone),
    biases 1-D; float data gives float32 tensors, double_data float64. `net`: the file's NetParameter, where the
    caller has read it already (a VGG-16 file takes seconds to parse).
    """
    state, unused = {}, []
    for layer in net_layers(read_caffemodel(path) if net is None else net):
        kind = layer_type(layer)
        if len(layer.blobs) and kind not in ("Convolution", "InnerProduct"):
            unused.append(f"{layer.name} ({kind}, {len(layer.blobs)} blobs)")
        if kind not in ("Convolution", "InnerProduct") or not len(layer.blobs):
            continue
        where = f"{path}: layer {layer.name!r}"
        if len(layer.blobs) > 2:
            raise InputError(f"{where}: {len(layer.blobs)} blobs, not weight and bias; the file is corrupt")
        if f"{layer.name}.weight" in state:
            raise InputError(f"{where}: two layers of this name have weights; rename one in Caffe and re-export")
        weight, *bias = (blob_array(b, f"{where} blob {i}") for i, b in enumerate(layer.blobs))
        if kind == "InnerProduct":
            weight = weight.reshape(-1, weight.shape[-1])
            weight = weight.T if layer.inner_product_param.transpose else weight
        state[f"{layer.name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        if bias:
            state[f"{layer.name}.bias"] = torch.from_numpy(bias[0].reshape(-1))
    if unused:
        LOG.warning("%s: weights of layers that are neither Convolution nor InnerProduct are not used: %s", path,
                    ", ".join(unused))
    if not state:
        raise InputError(f"{path}: no Convolution or InnerProduct weights in this Caffe model; pass another file")
    return state


# ---- torchvision VGG-16 -> Caffe convention ----

TORCHVISION_MEAN_RGB = (0.485, 0.456, 0.406)
TORCHVISION_STD_RGB = (0.229, 0.224, 0.225)


def torchvision_vgg16_to_caffe(state, where="torchvision state dict"):
    """torchvision VGG-16 conv weights (`features.N.*`) keyed conv1_1..conv5_3 for Caffe-style inputs.

    torchvision feeds x_tv[c] = (r_c/255 - m_c)/s_c (RGB c); we feed x[k] = p_k - M_k (BGR k = 2-c,
    p_k = r_c). Substituting r_c = x[2-c] + M_(2-c) into conv1_1 gives
      W[:, k] = W_tv[:, 2-k] / (255 s_(2-k)),  b = b_tv + sum_(c,i,j) W_tv[:, c, i, j] (M_(2-c)/255 - m_c)/s_c.
    Exact wherever the 3x3 window lies inside the image; on the 1-pixel border the zero padding differs
    (torchvision pads with its mean colour, we with Caffe's), a difference of < 0.02 input std.
    """
    norms = [k for k in state if re.fullmatch(r"features\.\d+\.running_mean", k)]   # vgg16_bn: convs, then norms
    if norms:
        raise InputError(f"{where}: torchvision's VGG-16 with batch norms (vgg16_bn: {some(norms, 1)}), which our "
                         "VGG-16 has not; pass torchvision's vgg16 weights")
    convs = sorted(int(k.split(".")[1]) for k, v in state.items() if re.fullmatch(r"features\.\d+\.weight", k)
                   and v.dim() == 4 and k[:-6] + "bias" in state)
    if len(convs) != len(conv_names()) or state[f"features.{convs[0]}.weight"].shape[1] != 3:
        raise InputError(f"{where}: not a torchvision VGG-16 state dict (expected 13 conv layers "
                         f"features.N.weight, found {len(convs)}); pass torchvision's vgg16 weights")
    out = {}
    for name, i in zip(conv_names(), convs):
        out[f"{name}.weight"] = state[f"features.{i}.weight"].float()
        out[f"{name}.bias"] = state[f"features.{i}.bias"].float()
    w, b = out["conv1_1.weight"], out["conv1_1.bias"]
    mean, std = torch.tensor(TORCHVISION_MEAN_RGB), torch.tensor(TORCHVISION_STD_RGB)
    caffe_zero = (torch.tensor(MEAN_BGR[::-1].copy()) / 255 - mean) / std  # a Caffe input of 0, as torchvision sees it
    out["conv1_1.bias"] = b + torch.einsum("ochw,c->o", w.double(), caffe_zero.double()).float()
    out["conv1_1.weight"] = (w / (255 * std)[None, :, None, None]).flip(1).contiguous()
    return out


# ---- writing our networks ----

def blob(tensor):
    b = BlobProto()
    a = tensor.detach().cpu().float().numpy()
    b.shape.dim.extend(a.shape)
    b.data.extend(a.ravel().tolist())
    return b


def add_layer(net, name, type_, bottom, top=None, params=()):
    layer = net.layer.add(name=name, type=type_, bottom=[bottom] if bottom else [], top=[top or name])
    layer.blobs.extend(blob(p) for p in params if p is not None)
    return layer


def add_conv(net, name, conv, bottom, relu=True, dropout=False):
    """Convolution (+ in-place ReLU, Dropout named relu6/drop6 after fc6, relu1_1 after conv1_1)."""
    c = add_layer(net, name, "Convolution", bottom, params=(conv.weight, conv.bias)).convolution_param
    c.num_output = conv.out_channels
    c.kernel_size.append(conv.kernel_size[0])
    if conv.bias is None:
        c.bias_term = False
    if conv.padding[0]:
        c.pad.append(conv.padding[0])
    if conv.dilation[0] > 1:
        c.dilation.append(conv.dilation[0])
    if conv.stride[0] > 1:
        c.stride.append(conv.stride[0])
    suffix = re.sub(r"^(conv|fc)", "", name)
    if relu:
        add_layer(net, f"relu{suffix}", "ReLU", name, name)
    if dropout:
        add_layer(net, f"drop{suffix}", "Dropout", name, name).dropout_param.dropout_ratio = 0.5
    return name


def add_vgg(net, vgg, bottom):
    for b, (_, n) in enumerate(VGG_BLOCKS):
        for i in range(n):
            bottom = add_conv(net, f"conv{b + 1}_{i + 1}", getattr(vgg, f"conv{b + 1}_{i + 1}"), bottom)
        if vgg.pools[b] is not None:
            p = add_layer(net, f"pool{b + 1}", "Pooling", bottom).pooling_param
            p.pool, (p.kernel_size, p.stride, p.pad) = POOL_MAX, vgg.pools[b]
            bottom = f"pool{b + 1}"
    return bottom


def add_deeplab_trunk(net, trunk, bottom):
    x = add_vgg(net, trunk.vgg, bottom)
    x = add_conv(net, "fc6", trunk.fc6, x, dropout=True)
    return add_conv(net, "fc7", trunk.fc7, x, dropout=True)


def deploy_net(model, size=321):
    """Our GAPNet or DeepLabLargeFOV as a Caffe deploy NetParameter (Input 1x3xSxS), weights in the blobs.

    Caffe's pooling rounds up like our ceil_mode pools. No round_mode is written (newer BVLC field;
    OpenCV's reader rejects it and has a ceil_mode of its own), so every reader rounds up by default.
    """
    net = NetParameter(name=getattr(model, "net", type(model).__name__))
    add_layer(net, "data", "Input", None).input_param.shape.add(dim=[1, 3, size, size])
    if isinstance(model, GAPNet):
        if model.net == "GAP-DeepLab":
            x = add_deeplab_trunk(net, model.trunk, "data")
        else:
            x = add_vgg(net, model.trunk, "data")
            for name in model.fc_layers:
                x = add_conv(net, name, getattr(model, name), x, dropout=True)
        p = add_layer(net, "pool_gap", "Pooling", x).pooling_param
        p.pool, p.global_pooling = POOL_AVE, True
        ip = add_layer(net, "score", "InnerProduct", "pool_gap", params=(model.score.weight, model.score.bias))
        ip.inner_product_param.num_output = model.score.out_features
        if model.score.bias is None:
            ip.inner_product_param.bias_term = False
    elif isinstance(model, DeepLabLargeFOV):
        add_conv(net, "fc8", model.fc8, add_deeplab_trunk(net, model.trunk, "data"), relu=False)
    else:
        raise InputError(f"{type(model).__name__}: no Caffe form; only {', '.join(CAFFE_NETS)} convert")
    return net


def deeplab_init_from_vgg16(state, where="VGG-16 weights"):
    """DeepLab-LargeFOV's ImageNet initialisation from VGG-16's weights, by the decimation the DeepLab paper
    describes (Chen et al., ICLR 2015): fc6 (7x7, 4096) decimated to 3x3 by every third position and to 1024
    filters by every fourth; fc7 keeps every fourth filter of every fourth input. Convolutions as they are;
    fc8 (ImageNet's classes) is dropped. Works at any width (fc6 inputs = conv5_3 channels x 49)."""
    fc6, fc7 = state["fc6.weight"], state["fc7.weight"]
    channels = state["conv5_3.weight"].shape[0]
    if fc6.shape[1] != channels * 49 or fc7.shape != (fc6.shape[0], fc6.shape[0]):
        raise InputError(f"{where}: fc6 {tuple(fc6.shape)} / fc7 {tuple(fc7.shape)}: not VGG-16's fully connected "
                         f"layers on {channels} x 7 x 7 features; pass VGG_ILSVRC_16_layers.caffemodel")
    out = {k: v for k, v in state.items() if k.startswith("conv")}
    out["fc6.weight"] = fc6.reshape(fc6.shape[0], channels, 7, 7)[::4, :, ::3, ::3].contiguous()
    out["fc6.bias"] = state["fc6.bias"][::4].contiguous()
    out["fc7.weight"] = fc7[::4, ::4, None, None].contiguous()
    out["fc7.bias"] = state["fc7.bias"][::4].contiguous()
    return out


def vgg16_problems(state):
    """VGG-16's layers (conv1_1..conv5_3 at conv1_1's width, fc6, fc7) that `state` lacks or holds in another shape:
    deeplab_init_from_vgg16 and write_deeplab_init stopped on them in a KeyError or RuntimeError traceback."""
    width = state["conv1_1.weight"].shape[0] / 64 if "conv1_1.weight" in state else 1
    with torch.device("meta"):
        want = {k: v.shape for k, v in DeepLabTrunk(width).vgg.state_dict().items()}
    want |= {f"{name}.{kind}": None for name in ("fc6", "fc7") for kind in ("weight", "bias")}
    return [f"{k} missing" if k not in state else f"{k} {tuple(state[k].shape)}, want {tuple(shape)}"
            for k, shape in want.items() if k not in state or shape not in (None, state[k].shape)]


def write_deeplab_init(state, caffemodel):
    """deeplab_init_from_vgg16's weights as a .caffemodel of conv1_1..conv5_3, fc6 (3x3, dilation 12), fc7 (what
    DeepLab-LargeFOV and GAP-DeepLab start from)."""
    trunk = DeepLabTrunk(state["conv1_1.weight"].shape[0] / 64)
    trunk.load_state_dict({k: state[".".join(k.split(".")[-2:])] for k in trunk.state_dict()})
    net = NetParameter(name="VGG_ILSVRC_16_layers-deeplab")
    add_layer(net, "data", "Input", None).input_param.shape.add(dim=[1, 3, 321, 321])
    add_deeplab_trunk(net, trunk, "data")
    with atomic_path(caffemodel) as tmp:
        Path(tmp).write_bytes(net.SerializeToString())


def write_caffe(model, caffemodel, prototxt, size=321):
    """Write the weights (.caffemodel: the deploy net with blobs, as Caffe snapshots) and the deploy .prototxt."""
    net = deploy_net(model, size)
    with atomic_path(caffemodel) as tmp:
        Path(tmp).write_bytes(net.SerializeToString())
    for layer in net.layer:
        del layer.blobs[:]
    with atomic_path(prototxt) as tmp:
        Path(tmp).write_text(text_format.MessageToString(net))
