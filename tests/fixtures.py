"""Files the tests build: a VGG-16 Caffe model of random weights, and the archives downloads.sh fetches."""
import hashlib
import tarfile
import zipfile

import numpy as np
import scipy.io
import torch
from PIL import Image

from guidedlabelling import caffemodel as cm
from guidedlabelling.io import save_gray_png, save_label_png

XML = "<annotation><filename>{id}.jpg</filename><object><name>{name}</name><difficult>0</difficult></object>" \
      "</annotation>"
VOC_NAMES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
             "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def vgg16_caffemodel(path, width=1 / 16, seed=0):
    """A VGG-16 .caffemodel of random weights at `width`: conv1_1..conv5_3, fc6 (InnerProduct on 7x7 features),
    fc7, fc8, V2 layers, as BVLC's VGG_ILSVRC_16_layers is laid out."""
    torch.manual_seed(seed)
    net = cm.NetParameter(name="VGG_ILSVRC_16_layers")
    channels, c_in = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 3
    for b, (c, n) in enumerate(channels):
        for i in range(n):
            c_out = int(c * width)
            cm.add_layer(net, f"conv{b + 1}_{i + 1}", "Convolution", None,  # He-scaled, as trained weights are
                         params=(torch.randn(c_out, c_in, 3, 3) * (2 / (9 * c_in)) ** 0.5 / (60 if b + i == 0 else 1),
                                 torch.randn(c_out) * 0.01))
            c_in = c_out
    fc = int(4096 * width)
    for name, shape in (("fc6", (fc, c_in * 49)), ("fc7", (fc, fc)), ("fc8", (1000, fc))):
        cm.add_layer(net, name, "InnerProduct", None,
                     params=(torch.randn(*shape) * (2 / shape[1]) ** 0.5, torch.randn(shape[0]) * 0.01))
    path.write_bytes(net.SerializeToString())
    return cm.caffe_state_dict(path)


def labelled_image(rng, cls):
    """A small photo-like image with one object of class `cls` and its label (a void border row)."""
    h, w = rng.integers(40, 70, 2)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    label = np.zeros((h, w), np.uint8)
    label[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = cls
    img[label == cls] = (200, 30, 30)
    label[h // 4, w // 4: 3 * w // 4] = 255
    return img, label


def voc_archives(folder, rng):
    """VOCtrainval_11-May-2012.tar and benchmark.tgz as their publishers lay them out, small: 6 VOC train and 4
    val images (label PNGs, Annotations), 4 more images only SBD labels (cls/*.mat). Returns their md5s."""
    src = folder / "src"
    voc = src / "VOCdevkit" / "VOC2012"
    sbd = src / "benchmark_RELEASE" / "dataset"
    ids = {"train": [f"2008_{i:06d}" for i in range(6)], "val": [f"2007_{i:06d}" for i in range(4)],
           "sbd": [f"2009_{i:06d}" for i in range(4)]}
    for split, names in ids.items():
        for k, i in enumerate(names):
            cls = [1, 8, 12, 15][k % 4]                       # aeroplane, cat, dog, person
            img, label = labelled_image(rng, cls)
            (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(voc / "JPEGImages" / f"{i}.jpg")
            if split == "sbd":
                (sbd / "cls").mkdir(parents=True, exist_ok=True)
                scipy.io.savemat(sbd / "cls" / f"{i}.mat", {"GTcls": {"Segmentation": label}})
            else:
                save_label_png(voc / "SegmentationClass" / f"{i}.png", label)
            (voc / "Annotations").mkdir(exist_ok=True)
            (voc / "Annotations" / f"{i}.xml").write_text(XML.format(id=i, name=VOC_NAMES[cls - 1]))
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split in ("train", "val"):
        (lists / f"{split}.txt").write_text("\n".join(ids[split]) + "\n")
    (sbd / "train.txt").write_text("\n".join(ids["sbd"][:3] + ids["train"][:2]) + "\n")
    (sbd / "val.txt").write_text(ids["sbd"][3] + "\n")
    with tarfile.open(folder / "VOCtrainval_11-May-2012.tar", "w") as tar:
        tar.add(src / "VOCdevkit", "VOCdevkit")
    with tarfile.open(folder / "benchmark.tgz", "w:gz") as tar:
        tar.add(src / "benchmark_RELEASE", "benchmark_RELEASE")
    return ids, {name: hashlib.md5((folder / name).read_bytes()).hexdigest()
                 for name in ("VOCtrainval_11-May-2012.tar", "benchmark.tgz")}


def saliency_archive(path, rng, images, masks, n=5):
    """A saliency archive: n images (with a rectangle object) under `images/`, their 0/255 masks under `masks/`
    (folders inside the zip; the same folder for MSRA-B), one image without a mask, and macOS's __MACOSX/ entries
    (AppleDouble files named ._<name>, which do not decode)."""
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n + 1):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            mask = np.zeros((48, 64), np.uint8)
            mask[10:30, 12:40] = 200 + i                      # any value above 127 is salient
            img[mask > 0] = (250, 250, 20)
            tmp = path.parent / "tmp.jpg"
            Image.fromarray(img).save(tmp)
            z.write(tmp, f"{images}/s{i}.jpg")
            if i < n:
                save_gray_png(tmp.with_suffix(".png"), mask)
                z.write(tmp.with_suffix(".png"), f"{masks}/s{i}.png")
        for name in (f"{images}/._s0.jpg", f"{masks}/._s0.png"):     # macOS's metadata of a zip made in Finder
            z.writestr(f"__MACOSX/{name}", b"\0\5\26\7 AppleDouble")
    return path
