"""Rule G2 (docs/method.md section 4) and seeds from heatmaps (docs/method.md section 2) on hand-made arrays."""
import numpy as np

from guidedlabelling.guide_rules import components, g2, guide_labels, seed_components
from guidedlabelling.seeds import SeedRule, heatmap2segconf
from guidedlabelling.stages.guide_labels import run_jobs

H, W = 40, 60


def flat_image():
    return np.full((H, W, 3), 128, np.uint8)


def test_heatmap_to_seed_threshold():
    # two classes; each map divided by its own maximum, argmax, then confidence*100 >= seedthres
    heat = np.zeros((2, 2, 3), np.float32)
    heat[0] = [[4, 2, 0.5], [0, 0, 1]]    # class 3, max 4
    heat[1] = [[1, 3, 0.1], [0, 0.5, 0]]  # class 7, max 3
    label, conf = heatmap2segconf(heat, [3, 7])
    # normalised: c3 = [[1, .5, .125], [0, 0, .25]], c7 = [[.333, 1, .033], [0, .1667, 0]]
    np.testing.assert_array_equal(label, [[3, 7, 3], [3, 7, 3]])
    np.testing.assert_allclose(conf, [[1, 1, .125], [0, 1 / 6, .25]], rtol=1e-6)
    np.testing.assert_array_equal(SeedRule(20).labels(heat, [3, 7]), [[3, 7, 0], [0, 0, 3]])
    np.testing.assert_array_equal(SeedRule(13).labels(heat, [3, 7]), [[3, 7, 0], [0, 7, 3]])
    seeds, cores = SeedRule(20).labels_at(heat, [3, 7], 20, 13)   # one computation of the scores, two thresholds
    np.testing.assert_array_equal(seeds, [[3, 7, 0], [0, 0, 3]])
    np.testing.assert_array_equal(cores, [[3, 7, 0], [0, 7, 3]])


def test_no_classes_gives_background():
    assert SeedRule(20).labels(np.zeros((0, 4, 5), np.float32), []).sum() == 0


def test_components_use_8_connectivity_and_min_size():
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True   # diagonal chain: one 8-connected component of 3
    mask[5, 5] = True                              # single pixel
    lab, n = components(mask, 2)
    assert n == 1 and lab[0, 0] == lab[2, 2] == 1 and lab[5, 5] == 0


def test_g2_one_class_fills_the_salient_component():
    seed = np.zeros((H, W), np.uint8)
    seed[10:16, 10:16] = 2                    # 36-pixel seed of class 2 inside the object
    salient = np.zeros((H, W), bool)
    salient[5:30, 5:30] = True                # the whole object
    out = g2(flat_image(), seed, salient)
    expected = np.zeros((H, W), np.uint8)
    expected[5:30, 5:30] = 2
    np.testing.assert_array_equal(out, expected)


def test_g2_seed_outside_saliency_keeps_its_class():
    seed = np.zeros((H, W), np.uint8)
    seed[2:8, 40:50] = 4                      # 60 px, no saliency there
    seed[30:32, 2:4] = 5                      # 4 px: below the 25-pixel minimum, dropped
    salient = np.zeros((H, W), bool)
    out = g2(flat_image(), seed, salient)
    expected = np.zeros((H, W), np.uint8)
    expected[2:8, 40:50] = 4
    np.testing.assert_array_equal(out, expected)


def test_g2_salient_region_without_seed_is_background():
    seed = np.zeros((H, W), np.uint8)
    seed[0:6, 0:6] = 1                         # seed away from the salient blob
    salient = np.zeros((H, W), bool)
    salient[20:35, 30:50] = True
    out = g2(flat_image(), seed, salient)
    assert (out[20:35, 30:50] == 0).all()
    assert (out[0:6, 0:6] == 1).all()          # the unused seed keeps its class


def test_g2_small_salient_component_is_dropped():
    seed = np.zeros((H, W), np.uint8)
    seed[10:16, 10:16] = 3
    salient = np.zeros((H, W), bool)
    salient[10:13, 10:17] = True               # 21 px < 1% of 2400 = 24 px: ignored
    out = g2(flat_image(), seed, salient)
    expected = np.zeros((H, W), np.uint8)
    expected[10:16, 10:16] = 3                 # the seed is unused, keeps its class
    np.testing.assert_array_equal(out, expected)


def test_g2_two_classes_split_by_crf_along_the_colour_edge():
    image = flat_image()
    image[:, :30] = (200, 40, 40)              # left half red, right half blue
    image[:, 30:] = (40, 40, 200)
    salient = np.zeros((H, W), bool)
    salient[5:35, 10:50] = True                # one component spanning both halves
    seed = np.zeros((H, W), np.uint8)
    seed[15:25, 12:18] = 1                     # class 1 on the red side
    seed[15:25, 42:48] = 6                     # class 6 on the blue side
    out = g2(image, seed, salient)
    assert (out[5:35, 10:30] == 1).all()
    assert (out[5:35, 30:50] == 6).all()
    assert (out[~salient] == 0).all()


def test_seed_components_cover_background_class_too():
    seed = np.zeros((10, 10), np.uint8)
    seed[:, 5:] = 2
    comp, comp_class = seed_components(seed)
    assert sorted(comp_class[1:].tolist()) == [0, 2]
    assert len(np.unique(comp)) == 2


def test_salor_uses_ground_truth_foreground():
    seed = np.zeros((H, W), np.uint8)
    seed[10:16, 10:16] = 2
    gt = np.zeros((H, W), np.uint8)
    gt[8:25, 8:25] = 2
    gt[8, 8:25] = 255                          # void is not foreground
    out = guide_labels("salor", flat_image(), seed, None, gt=gt)
    assert (out[9:25, 8:25] == 2).all() and out[8, 10] == 0


def test_saliency_only_rule_takes_the_heatmap_class():
    """Salient pixels take the class whose map, divided by its maximum, is highest there: class 9 (max 4) on
    the left half, class 3 (max 2) on the right half, where 9's raw value 3 is higher but only 3/4 of its max."""
    heat = np.zeros((2, H, W), np.float32)
    heat[0, 1:5, 1:5], heat[1, 1:5, 1:5] = 4, 1      # left half: 9 at 1.0, 3 at 0.5
    heat[0, 1:5, 5:9], heat[1, 1:5, 5:9] = 3, 2      # right half: 9 at 0.75, 3 at 1.0
    salient = np.zeros((H, W), bool)
    salient[1:5, 1:9] = True
    out = guide_labels("sal", flat_image(), None, salient, heat, [9, 3])
    assert (out[1:5, 1:5] == 9).all() and (out[1:5, 5:9] == 3).all()
    assert out.sum() == 9 * 16 + 3 * 16                # nothing outside the salient pixels


class CountedJob:
    """A guide job that counts how often it is pickled here and marks each image it did with a file."""
    pickled = 0

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        CountedJob.pickled += 1
        return CountedJob, (self.folder,)

    def __call__(self, i):
        (self.folder / str(i)).touch()


def test_the_pool_gets_the_job_once_per_process_not_once_per_image(tmp_path):
    """A job holds the dataset, about 115 bytes an image pickled (35 KB for the built-in data's 300 images): sent
    with every image, VOC's train_aug would have the pool's one feeding thread pickle 1.2 MB 10,582 times."""
    CountedJob.pickled = 0
    run_jobs(CountedJob(tmp_path), range(40), 2)
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(40))
    assert CountedJob.pickled <= 2    # none where the workers fork, one per worker where they spawn
