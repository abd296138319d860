"""The paper's VOC path on local fixture archives: ./downloads.sh unpacks and converts them (VOC, SBD ->
SegmentationClassAug + train_aug, VGG-16 -> the DeepLab init, MSRA-B / DUTS-TR -> images/ + masks/), then the
voc12_paper preset runs end to end from those files, sizes shrunk by overrides only."""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import saliency_archive, vgg16_caffemodel, voc_archives
from guidedlabelling.datasets import VOCDataset
from guidedlabelling.io import load_label_png
from guidedlabelling.networks import DeepLabLargeFOV
from guidedlabelling.weights import load_init

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """downloads.sh run on fixture archives (file:// URLs) into a fresh data and models folder."""
    tmp = tmp_path_factory.mktemp("downloads")
    archives = tmp / "archives"
    archives.mkdir()
    rng = np.random.default_rng(0)
    ids, md5 = voc_archives(archives, rng)
    vgg16_caffemodel(archives / "VGG_ILSVRC_16_layers.caffemodel")
    saliency_archive(archives / "MSRA-B.zip", rng, "MSRA-B", "MSRA-B")
    saliency_archive(archives / "DUTS-TR.zip", rng, "DUTS-TR/DUTS-TR-Image", "DUTS-TR/DUTS-TR-Mask")
    env = dict(os.environ, DATA=str(tmp / "data"), MODELS=str(tmp / "models"), PYTHON=sys.executable,
               VOC_URL=(archives / "VOCtrainval_11-May-2012.tar").as_uri(), VOC_MD5=md5["VOCtrainval_11-May-2012.tar"],
               SBD_URL=(archives / "benchmark.tgz").as_uri(), SBD_MD5=md5["benchmark.tgz"],
               VGG_URL=(archives / "VGG_ILSVRC_16_layers.caffemodel").as_uri(),
               MSRAB_URL=(archives / "MSRA-B.zip").as_uri(), DUTS_URL=(archives / "DUTS-TR.zip").as_uri())
    proc = subprocess.run(["bash", str(ROOT / "downloads.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, ids, env, proc.stdout


def test_downloads_unpack_and_convert(downloaded):
    tmp, ids, env, stdout = downloaded
    voc = tmp / "data" / "VOCdevkit" / "VOC2012"
    train_aug = (voc / "ImageSets" / "Segmentation" / "train_aug.txt").read_text().split()
    assert train_aug == sorted(set(ids["train"] + ids["sbd"]))          # VOC train + SBD train/val, minus VOC val
    data = VOCDataset(voc, "train_aug")
    assert data.ids == train_aug and all(len(data.image_classes(i)) == 1 for i in range(len(data)))
    for i in ids["sbd"] + ids["train"]:
        assert set(np.unique(load_label_png(voc / "SegmentationClassAug" / f"{i}.png"))) <= {0, 1, 8, 12, 15, 255}
    for name in ("MSRA-B", "DUTS-TR"):
        folder = tmp / "data" / "saliency" / name
        assert sorted(p.name for p in (folder / "images").iterdir()) == [f"s{i}.jpg" for i in range(5)]
        assert all(set(np.unique(load_label_png(p))) == {0, 255} for p in (folder / "masks").iterdir())
        assert "left out 1 images without a fitting mask: s5" in stdout
        assert not (tmp / "data" / "downloads" / name).exists()   # its unpacked copy: a third copy of DUTS-TR
    recorded = (tmp / "data" / "checksums.recorded").read_text()
    assert all(name in recorded for name in ("VGG_ILSVRC_16_layers.caffemodel", "MSRA-B.zip", "DUTS-TR.zip"))
    # the derived DeepLab init loads into DeepLab-LargeFOV: every layer of the pretrained trunk
    report = load_init(DeepLabLargeFOV(21, 1 / 16), tmp / "models" / "VGG_ILSVRC_16_layers-deeplab.caffemodel")
    assert report[0].startswith("loaded 30 of 32") and all("a new layer" in line for line in report[1:])


def test_downloads_rerun_keeps_an_init_and_checks_recorded_sums(downloaded):
    tmp, _, env, _ = downloaded
    models = tmp / "models"
    authors = models / "VGG_ILSVRC_16_layers-deeplab.caffemodel"
    authors.write_bytes(authors.read_bytes())                          # stands for the authors' own file
    before = authors.stat().st_mtime_ns
    proc = subprocess.run(["bash", str(ROOT / "downloads.sh"), "--models"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "keeping" in proc.stdout and authors.stat().st_mtime_ns == before
    downloaded_vgg = tmp / "data" / "downloads" / "VGG_ILSVRC_16_layers.caffemodel"
    changed = Path(env["VGG_URL"][len("file://"):])
    changed.write_bytes(changed.read_bytes() + b"\0")
    downloaded_vgg.unlink()
    proc = subprocess.run(["bash", str(ROOT / "downloads.sh"), "--models"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1].startswith(f"downloads.sh: {downloaded_vgg}: sha256 ")
    assert "recorded for it in" in proc.stderr and "delete its line" in proc.stderr


def test_a_rerun_unpacks_only_archives_downloaded_again(downloaded):
    """Every rerun unpacked the VOC tar (2 GB), SBD's and the saliency zips again: now only an archive downloaded
    since (newer than its mark) or one whose folder went."""
    tmp, _, env, _ = downloaded
    msra = tmp / "data" / "saliency" / "MSRA-B" / "images" / "s0.jpg"
    before = msra.stat().st_mtime_ns
    proc = downloads(env, "--voc", "--sbd", "--saliency-data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("   unpacked already") == 4 and msra.stat().st_mtime_ns == before, proc.stdout
    marks = tmp / "data" / "downloads"
    os.utime(marks / ".VOCtrainval_11-May-2012.tar.unpacked", ns=(0, 0))   # the tar downloaded again since
    shutil.rmtree(tmp / "data" / "saliency" / "MSRA-B")                    # a folder removed
    proc = downloads(env, "--voc", "--saliency-data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("   unpacked already") == 1 and "DUTS-TR.zip\n   unpacked already" in proc.stdout
    assert msra.is_file() and (marks / ".VOCtrainval_11-May-2012.tar.unpacked").stat().st_mtime_ns > \
        (marks / "VOCtrainval_11-May-2012.tar").stat().st_mtime_ns


def downloads(env, *parts):
    return subprocess.run(["bash", str(ROOT / "downloads.sh"), *parts], env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_download_that_does_not_unpack_is_not_recorded(downloaded, tmp_path):
    """An error page served as MSRA-B.zip: one line naming the file and the fix, and no checksum recorded, so the
    right archive then passes (its sha256 was recorded first, and every later download 'differed')."""
    _, _, env, _ = downloaded
    data, page = tmp_path / "data", tmp_path / "moved.html"
    page.write_text("<html>this page has moved</html>")
    proc = downloads(dict(env, DATA=str(data), MSRAB_URL=page.as_uri()), "--saliency-data")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        f"downloads.sh: {data}/downloads/MSRA-B.zip: not a whole zip archive (an error page?); delete it and rerun")
    assert not (data / "checksums.recorded").exists()
    (data / "downloads" / "MSRA-B.zip").unlink()
    proc = downloads(dict(env, DATA=str(data)), "--saliency-data")
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[1] for line in (data / "checksums.recorded").read_text().splitlines()] == \
        ["MSRA-B.zip", "DUTS-TR.zip"]


def test_an_error_page_for_vgg_or_a_damaged_zip_is_one_line_and_not_recorded(downloaded, tmp_path):
    _, _, env, _ = downloaded
    data, page = tmp_path / "data", tmp_path / "moved.html"
    page.write_text("<html>this page has moved</html>")
    proc = downloads(dict(env, DATA=str(data), MODELS=str(tmp_path / "models"), VGG_URL=page.as_uri()), "--models")
    vgg = data / "downloads" / "VGG_ILSVRC_16_layers.caffemodel"
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        f"downloads.sh: {vgg}: not a Caffe model (an error page?); delete it and rerun")
    damaged = tmp_path / "MSRA-B.zip"                          # a member whose bytes no longer match its CRC
    saliency_archive(damaged, np.random.default_rng(1), "MSRA-B", "MSRA-B")
    raw = bytearray(damaged.read_bytes())
    at = raw.index(b"MSRA-B/s1.jpg") + len("MSRA-B/s1.jpg") + 200
    raw[at] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    proc = downloads(dict(env, DATA=str(data), MSRAB_URL=damaged.as_uri()), "--saliency-data")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (f"downloads.sh: {data}/downloads/MSRA-B.zip: "
                                                                     "not a whole zip archive (an error page?); "
                                                                     "delete it and rerun")
    assert not (data / "checksums.recorded").exists()


def test_the_saliency_arranger_counts_pairs_that_do_not_decode(tmp_path):
    src, rng = tmp_path / "MSRA-B", np.random.default_rng(2)
    src.mkdir()
    for i in range(3):
        mask = np.zeros((20, 30), np.uint8)
        mask[5:15, 5:20] = 255
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(src / f"s{i}.jpg")
        Image.fromarray(mask).save(src / f"s{i}.png")
    (src / "s1.png").write_text("<html>not an image</html>")

    def arrange(dst):
        return subprocess.run([sys.executable, "-m", "guidedlabelling.datasets.saliency_sets", str(src), str(dst)],
                              capture_output=True, text=True)
    proc = arrange(tmp_path / "out")
    assert proc.returncode == 0 and proc.stdout.splitlines() == [
        f"{tmp_path / 'out'}: 2 images with masks", "left out 1 image/mask pairs that do not decode: s1"]
    for i in (0, 2):
        (src / f"s{i}.jpg").write_text("<html>not an image</html>")
    Image.fromarray(np.zeros((20, 31), np.uint8)).save(src / "s1.png")    # s1 decodes, at another size
    proc = arrange(tmp_path / "none")
    assert proc.returncode == 2 and proc.stderr.strip() == (f"error: {src}: none of its 3 image/mask pairs is usable "
                                                            "(2 do not decode, 1 have a mask of another size than the "
                                                            "image); is this the archive?")
    assert not (tmp_path / "none").exists()


def test_an_unreachable_url_names_no_file_to_delete_and_an_archive_of_no_voc_is_an_error(downloaded, tmp_path):
    """A probe's cases: 'delete ...tar to start it again' named a file that was not there; an archive without
    VOCdevkit/VOC2012 unpacked to 'done'."""
    _, _, env, _ = downloaded
    data, gone = tmp_path / "data", (tmp_path / "nowhere.tar").as_uri()
    proc = downloads(dict(env, DATA=str(data), VOC_URL=gone), "--voc")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        f"downloads.sh: could not download {gone} (curl error 37: offline? the URL moved?); rerun")
    assert not (data / "downloads" / "VOCtrainval_11-May-2012.tar").exists()
    other = tmp_path / "other.tar"
    subprocess.run(["tar", "-cf", str(other), "-C", str(tmp_path), "data"], check=True)
    proc = downloads(dict(env, DATA=str(tmp_path / "data2"), VOC_URL=other.as_uri(),
                          VOC_MD5=hashlib.md5(other.read_bytes()).hexdigest()), "--voc")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        f"downloads.sh: {tmp_path}/data2/downloads/VOCtrainval_11-May-2012.tar: holds no VOCdevkit/VOC2012/JPEGImages "
        "(another archive?); check VOC_URL, delete it and rerun")


def test_a_download_of_another_md5_says_so_in_one_line(downloaded, tmp_path):
    """md5sum -c printed its FAILED and WARNING lines before the script's own."""
    _, _, env, _ = downloaded
    tar = tmp_path / "data" / "downloads" / "VOCtrainval_11-May-2012.tar"
    proc = downloads(dict(env, DATA=str(tmp_path / "data"), VOC_MD5="0" * 32), "--voc")
    got = hashlib.md5(tar.read_bytes()).hexdigest()
    assert proc.returncode == 1 and [line for line in proc.stderr.splitlines() if "md5" in line.lower()] == [
        f"downloads.sh: {tar}: md5 {got}, not the published {'0' * 32}; delete it and rerun"]


def test_a_data_folder_whose_name_holds_a_backslash_passes_its_checks(downloaded, tmp_path):
    """sha256sum FILE (and md5sum) escapes a name holding '\\' and puts '\\' before the sum it prints, which was
    recorded so (md5: never matched the published one). (tar -C cannot unpack into such a folder, so --models.)"""
    _, _, env, _ = downloaded
    vgg16_caffemodel(tmp_path / "VGG_ILSVRC_16_layers.caffemodel")   # (another test appends to the fixture's)
    proc = downloads(dict(env, DATA=str(tmp_path / "a\\b"), MODELS=str(tmp_path / "models"),
                          VGG_URL=(tmp_path / "VGG_ILSVRC_16_layers.caffemodel").as_uri()), "--models")
    assert proc.returncode == 0, proc.stderr
    recorded = (tmp_path / "a\\b" / "checksums.recorded").read_text().split()
    vgg = tmp_path / "a\\b" / "downloads" / "VGG_ILSVRC_16_layers.caffemodel"
    assert recorded == [hashlib.sha256(vgg.read_bytes()).hexdigest(), vgg.name]


def test_a_server_that_cannot_resume_gets_the_whole_file(downloaded, tmp_path):
    """curl's error 33 (no byte ranges) on a partial file: downloaded again whole, where 'rerun to resume' looped."""
    _, _, env, _ = downloaded
    stub = tmp_path / "bin" / "curl"
    stub.parent.mkdir()
    stub.write_text('#!/bin/bash\nfor a in "$@"; do [ "$a" = -C ] && exit 33; done\nexec /usr/bin/curl "$@"\n')
    stub.chmod(0o755)
    data, vgg = tmp_path / "data", tmp_path / "VGG_ILSVRC_16_layers.caffemodel"
    vgg16_caffemodel(vgg)
    (data / "downloads").mkdir(parents=True)
    (data / "downloads" / vgg.name).write_bytes(b"partial")
    proc = downloads(dict(env, DATA=str(data), MODELS=str(tmp_path / "models"), PATH=f"{stub.parent}:{env['PATH']}",
                          VGG_URL=vgg.as_uri()), "--models")
    assert proc.returncode == 0, proc.stderr
    assert "the server cannot resume" in proc.stdout
    assert (data / "downloads" / vgg.name).read_bytes() == vgg.read_bytes()


class RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves the files of `self.server.folder` as web servers do: a Range from a byte past the end is 416."""

    def do_GET(self):
        data = (self.server.folder / Path(self.path).name).read_bytes()
        start = int(self.headers.get("Range", "bytes=0-")[len("bytes="):].split("-")[0])
        if start >= len(data) and self.headers.get("Range"):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            data = b"<html>416 Range Not Satisfiable</html>"
        else:
            self.send_response(206 if self.headers.get("Range") else 200)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_rerun_over_http_finds_the_download_whole(downloaded, tmp_path):
    """A rerun asked the server for the bytes after a whole file: 416, curl error 22, and 'rerun to resume' (which
    looped) or a new 2 GB download, where file:// URLs answered nothing. Now a whole file passes, a partial one
    resumes."""
    _, _, env, _ = downloaded
    server = http.server.HTTPServer(("127.0.0.1", 0), RangeServer)
    server.folder = Path(env["VGG_URL"][len("file://"):]).parent
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url, data = f"http://127.0.0.1:{server.server_port}/", tmp_path / "data"
    env = dict(env, DATA=str(data), VOC_URL=url + "VOCtrainval_11-May-2012.tar")
    tar = data / "downloads" / "VOCtrainval_11-May-2012.tar"
    try:
        assert downloads(env, "--voc").returncode == 0
        proc = downloads(env, "--voc")
        assert proc.returncode == 0, proc.stderr
        assert "   downloaded already (curl's 416 above" in proc.stdout and "   unpacked already" in proc.stdout
        tar.write_bytes(tar.read_bytes()[:5000])
        proc = downloads(env, "--voc")
        assert proc.returncode == 0 and "downloaded already" not in proc.stdout, proc.stderr
        assert tar.read_bytes() == (server.folder / tar.name).read_bytes()
    finally:
        server.shutdown()


def test_parts_are_checked_first_and_sbd_needs_voc(downloaded, tmp_path):
    _, _, env, _ = downloaded
    data = tmp_path / "data"
    proc = downloads(dict(env, DATA=str(data)), "--voc", "--sdb")
    assert proc.returncode == 1 and not data.exists()                   # nothing fetched before the typo
    assert proc.stderr.strip() == "downloads.sh: unknown part --sdb (use --voc --sbd --models --saliency-data; --help)"
    helped = subprocess.run(["bash", str(Path(os.path.relpath(ROOT, tmp_path)) / "downloads.sh"), "--help"],
                            cwd=tmp_path, capture_output=True, text=True)   # from another folder, by a relative path
    assert helped.returncode == 0 and helped.stdout.startswith("Fetch what the paper's runs need")
    proc = downloads(dict(env, DATA=str(data)), "--models", "--sbd")
    assert proc.returncode == 1 and not data.exists()                   # checked before VGG is fetched
    proc = downloads(dict(env, DATA=str(data)), "--sbd")
    assert proc.returncode == 1 and not (data / "VOCdevkit").exists()
    assert proc.stderr.strip() == "downloads.sh: --sbd needs VOC 2012 first: run ./downloads.sh --voc --sbd"
    proc = downloads(dict(env, DATA=str(data)), "--sbd", "--voc")       # VOC first whatever the order given
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.index("== VOCtrainval") < proc.stdout.index("== benchmark.tgz")


def test_the_sbd_arranger_refuses_missing_lists_and_keeps_train_aug(downloaded, tmp_path):
    """A wrong SBD folder wrote train_aug from VOC's train list alone (1464 images instead of 10582) and exited 0."""
    tmp, _, _, _ = downloaded
    voc = tmp / "data" / "VOCdevkit" / "VOC2012"
    train_aug = voc / "ImageSets" / "Segmentation" / "train_aug.txt"
    before = train_aug.read_text()
    proc = subprocess.run([sys.executable, "-m", "guidedlabelling.datasets.sbd", str(tmp_path / "nowhere"), str(voc)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: {tmp_path / 'nowhere' / 'train.txt'}: missing; run ./downloads.sh --sbd first (SBD needs VOC 2012's "
        "lists and labels: --voc, then --sbd)")
    assert train_aug.read_text() == before


def test_voc12_paper_preset_runs_on_the_downloaded_fixture(downloaded, tmp_path):
    tmp, ids, _, _ = downloaded
    models = tmp / "models"
    shrink = ["pascalroot=" + str(tmp / "data" / "VOCdevkit"), "saliency_data=" + str(tmp / "data/saliency/MSRA-B"),
              "device=cpu", "workers=0",
              "seed_train.init=" + str(models / "VGG_ILSVRC_16_layers.caffemodel"), "seed_train.width=0.0625",
              "seed_train.input_size=65", "seed_train.max_iter=2", "seed_train.batch_size=2", "seed_train.stepsize=1",
              "saliency_train.init=" + str(models / "VGG_ILSVRC_16_layers-deeplab.caffemodel"),
              "saliency_train.width=0.0625", "saliency_train.input_size=65", "saliency_train.max_iter=2",
              "saliency_train.batch_size=2", "saliency.test_size=65",
              "seg_train.init=" + str(models / "VGG_ILSVRC_16_layers-deeplab.caffemodel"), "seg_train.width=0.0625",
              "seg_train.input_size=65", "seg_train.max_iter=2", "seg_train.batch_size=2", "segmentations.test_size=81"]
    cmd = [sys.executable, str(ROOT / "script.py"), "--config", "voc12_paper", "--out_root", str(tmp_path / "runs")]
    proc = subprocess.run(cmd + [a for s in shrink for a in ("--set", s)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs" / "voc12_paper"
    summary = json.loads((runs / "summary.json").read_text())
    results = json.loads((Path(summary["predictions"]) / "results.json").read_text())
    assert len(results["per_class_IoU"]) == 21 and np.asarray(results["confusion"]).shape == (21, 21)
    assert len(list(Path(summary["guide_labels"]).glob("*.png"))) == len(ids["train"] + ids["sbd"])
    assert "test_pcrf-" not in summary["predictions"]          # the preset's own test: the release's, with its CRF
    for stage in ("seed_train", "seg_train"):
        log = next((runs / stage).glob("*/log.txt")).read_text()
        assert "loaded" in log and "of the pretrained trunk" not in log


def test_a_relative_data_folder_is_where_the_command_is_run(downloaded, tmp_path):
    """DATA=mine from another folder: mine/ there (it was the project's, and printed as if it were the caller's)."""
    _, _, env, _ = downloaded
    proc = subprocess.run(["bash", str(ROOT / "downloads.sh"), "--saliency-data"], env=dict(env, DATA="mine"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mine" / "saliency" / "DUTS-TR" / "images").is_dir() and not (ROOT / "mine").exists()
    assert f"{tmp_path / 'mine'}/saliency/DUTS-TR" in proc.stdout
