"Tests of the ShapeWorld-5i generator and its PASCAL VOC-style writer."
import json
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from clipfss_nb.core import load_image, load_mask
from clipfss_nb.shapeworld import (ShapeWorld, SHAPEWORLD_CLASSES, shapeworld_name, SHAPEWORLD_FOLDS, CATEGORIES, boundary_band,
                                   caption_classes, check_sample, class_image_counts, write_shapeworld)


def test_classes_and_folds():
    assert len(SHAPEWORLD_CLASSES) == 20 and len(set(SHAPEWORLD_CLASSES)) == 20
    assert sorted(i for f in SHAPEWORLD_FOLDS.values() for i in f) == list(range(1, 21))
    for attr in (1, 2, 3):  # no shape, pattern or colour belongs to a single class
        vals = [c[attr] for c in CATEGORIES]
        assert min(vals.count(v) for v in vals) >= 2


@pytest.mark.parametrize('size', [64, 128])
def test_determinism(size):
    a, b = ShapeWorld(size, seed=3).sample(11), ShapeWorld(size, seed=3).sample(11)
    for k in ('image', 'label', 'instances'): np.testing.assert_array_equal(a[k], b[k])
    assert a['captions'] == b['captions'] and a['classes'] == b['classes']
    # order independence: sampling other scenes first changes nothing
    sw = ShapeWorld(size, seed=3); sw.sample(0); sw.sample(5)
    np.testing.assert_array_equal(sw.sample(11)['image'], a['image'])
    assert not np.array_equal(ShapeWorld(size, seed=4).sample(11)['image'], a['image'])
    assert not np.array_equal(ShapeWorld(size, seed=3, split='val').sample(11)['image'], a['image'])


def test_mask_caption_consistency():
    sw = ShapeWorld(128, seed=0, split='val')
    for i in range(60):
        s = sw.sample(i)
        check_sample(s, sw.band)
        assert s['image'].shape == (128, 128, 3) and s['image'].dtype == np.uint8
        assert s['label'].dtype == np.uint8 and 1 <= len(s['classes']) <= 4


def test_band_only_at_borders():
    s = ShapeWorld(128, seed=1).sample(2)
    inst, label = s['instances'], s['label']
    ys, xs = np.nonzero(label == 255)
    assert len(ys) > 0
    pad = np.pad(inst, 1, mode='edge')
    for y, x in zip(ys, xs):  # every ignore pixel has a different instance within one pixel
        assert (pad[y:y + 3, x:x + 3] != inst[y, x]).any()
    assert not boundary_band(np.ones((8, 8), np.uint8)).any()


def test_check_sample_catches_wrong_caption():
    s = ShapeWorld(128, seed=0).sample(0)
    absent = next(c for c in range(1, 21) if c not in s['classes'])
    bad = dict(s, captions=[f'a photo of a {shapeworld_name(absent)}.'] + s['captions'][1:])
    with pytest.raises(AssertionError): check_sample(bad)
    assert caption_classes('a photo of two kites without a gem.') == ({8}, {9})


def test_category_balance_per_fold():
    counts = class_image_counts([ShapeWorld(96, seed=2).sample(i) for i in range(400)])
    assert counts.min() > 0.5 * counts.mean()
    per_fold = [counts[np.array(ids) - 1].sum() for ids in SHAPEWORLD_FOLDS.values()]
    assert max(per_fold) < 1.3 * min(per_fold)


def test_writer_round_trip(tmp_path):
    meta = write_shapeworld(tmp_path, n_train=5, n_val=3, size=64, seed=9)
    assert (tmp_path / 'ImageSets/Segmentation/train.txt').read_text().split() == [f'sw_train_{i:06d}' for i in range(5)]
    assert len((tmp_path / 'ImageSets/Segmentation/val.txt').read_text().split()) == 3
    m = json.loads((tmp_path / 'shapeworld.json').read_text())
    assert m == json.loads(json.dumps(meta)) and m['class_names'] == list(SHAPEWORLD_CLASSES)
    assert m['folds']['0'] == [1, 2, 3, 4, 5] and m['size'] == 64 and m['seed'] == 9
    caps = json.loads((tmp_path / 'captions.json').read_text())
    for split, n in (('train', 5), ('val', 3)):
        sw = ShapeWorld(64, 9, split)
        for i in range(n):
            iid, s = f'sw_{split}_{i:06d}', sw.sample(i)
            with Image.open(tmp_path / 'SegmentationClassAug' / f'{iid}.png') as im: assert im.mode == 'L'
            np.testing.assert_array_equal(load_mask(tmp_path / 'SegmentationClassAug' / f'{iid}.png', kind='label'), s['label'])
            obj = load_mask(tmp_path / 'SegmentationObject' / f'{iid}.png', kind='label')
            np.testing.assert_array_equal(obj[s['label'] != 255], s['instances'][s['label'] != 255])
            img = load_image(tmp_path / 'JPEGImages' / f'{iid}.jpg')
            assert img.shape == (64, 64, 3)
            coarse = lambda a: a.astype(float).reshape(16, 4, 16, 4, 3).mean((1, 3))  # JPEG keeps the low frequencies
            assert np.abs(coarse(img) - coarse(s['image'])).mean() < 6
            assert caps[iid] == s['captions']
    assert not list(tmp_path.rglob('*.tmp'))  # atomic writes leave no temporaries


def test_cli(tmp_path):
    import subprocess, sys
    exe = str(Path(sys.executable).parent / 'clipfss-shapeworld')  # the console script of this environment
    r = subprocess.run([exe, '--root', str(tmp_path / 'sw'), '--n-train', '2', '--n-val', '1', '--size', '64'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'sw' / 'JPEGImages' / 'sw_val_000000.jpg').is_file()
