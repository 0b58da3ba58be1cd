"Datasets, list building and the two samplers on generated data in the real on-disk layout."
import subprocess
import sys
import numpy as np
import pytest
from PIL import Image
from clipfss_nb.data import (VOCDataset, FolderDataset, find_voc_root, make_voc_like, build_fold_lists, FoldLists,
                             sample_hsnet, sample_pfenet, episodes_to_tsv, episodes_from_tsv, read_class_file_list, Episode)

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return VOCDataset(make_voc_like(tmp_path_factory.mktemp('sw') / 'sw', n=60, seed=3))

@pytest.mark.parametrize('sub', ['.', 'VOC2012', 'VOCdevkit/VOC2012', 'VOCdevkit2012/VOC2012'])
def test_voc_root_detection(tmp_path, sub):
    make_voc_like(tmp_path / sub, n=3)
    ds = VOCDataset(tmp_path)
    assert len(ds) == 3 and ds.name == 'shapeworld' and ds.fold_classes(2) == [11, 12, 13, 14, 15]

def test_voc_palette_segmentationclass_and_no_meta(tmp_path):
    (tmp_path / 'JPEGImages').mkdir(); (tmp_path / 'SegmentationClass').mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'JPEGImages/a.jpg')
    pal = Image.fromarray(np.array([[0, 15], [255, 1]], np.uint8).repeat(2, 0).repeat(2, 1), mode='P')
    pal.putpalette([0, 0, 0, 200, 0, 0] * 128); pal.save(tmp_path / 'SegmentationClass/a.png')
    ds = VOCDataset(tmp_path)
    assert ds.name == 'pascal' and ds.ids == ['a'] and ds.class_name(15) == 'person'
    assert np.unique(ds.load_label('a')).tolist() == [0, 1, 15, 255]
    assert find_voc_root(tmp_path)[1] == 'SegmentationClass'

def test_folder_dataset_layouts(tmp_path):
    for c in ('b_dog', 'a_cat'):
        (tmp_path / 'fss' / c).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((6, 6, 3), 50, np.uint8)).save(tmp_path / 'fss' / c / f'{k}.jpg')
            m = np.zeros((6, 6), np.uint8); m[1:4, 1:4] = 255; m[0, 0] = 100  # < 128: background (FSS-1000 rule)
            Image.fromarray(m).save(tmp_path / 'fss' / c / f'{k}.png')
    ds = FolderDataset(tmp_path / 'fss')
    assert ds.class_names == {1: 'a_cat', 2: 'b_dog'} and ds.ids[0] == 'a_cat/0'
    assert (ds.load_label('b_dog/1') == 2).sum() == 9 and ds.load_label('b_dog/1')[0, 0] == 0
    assert FolderDataset(tmp_path / 'fss', n_folds=2).fold_classes(1) == [2]
    with pytest.raises(FileNotFoundError): FolderDataset(tmp_path / 'nothing')

def test_pfenet_pixel_rule_exact_threshold(tmp_path):
    (tmp_path / 'JPEGImages').mkdir(); (tmp_path / 'SegmentationClassAug').mkdir()
    for name, n1, n2 in (('a', 2048, 2047), ('b', 5, 3000)):
        lab = np.zeros(100 * 100, np.uint8); lab[:n1] = 1; lab[5000:5000 + n2] = 2
        Image.fromarray(lab.reshape(100, 100)).save(tmp_path / f'SegmentationClassAug/{name}.png')
        Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / f'JPEGImages/{name}.jpg')
    fl = build_fold_lists(VOCDataset(tmp_path), 0)
    assert fl.queries == ['a', 'b'] and fl.pools[1] == ['a'] and fl.pools[2] == ['b']
    assert fl.present == {'a': [1, 2], 'b': [1, 2]}  # presence has no threshold
    assert fl.pairs == [('a', 1), ('b', 2)]

def test_lists_deterministic_and_serialisable(world):
    a, b = build_fold_lists(world, 1, min_pixels=300), build_fold_lists(world, 1, min_pixels=300)
    assert a.to_json() == b.to_json() and FoldLists.from_json(a.to_json()).pairs == a.pairs
    for c, pool in a.pools.items():
        assert all((world.load_label(i) == c).sum() >= 300 for i in pool)

def test_hsnet_sampler_rules(world):
    pairs = build_fold_lists(world, 0, min_pixels=300).pairs
    eps = sample_hsnet(pairs, shots=5, episodes=1000)
    assert len(eps) == 1000
    assert [(e.query, e.cls) for e in eps] == [pairs[i % len(pairs)] for i in range(1000)]  # in order, wrapped
    pools = {}
    for q, c in pairs: pools.setdefault(c, set()).add(q)
    assert all(e.query not in e.supports and set(e.supports) <= pools[e.cls] for e in eps)
    assert any(len(set(e.supports)) < 5 for e in eps)  # independent draws may repeat
    assert len(sample_hsnet(pairs, 1, None)) == len(pairs)  # one pass

def test_pfenet_sampler_rules(world):
    fl = build_fold_lists(world, 0, min_pixels=300)
    eps = sample_pfenet(fl, shots=2, episodes=500, seed=7)
    assert [e.query for e in eps] == [fl.queries[i % len(fl.queries)] for i in range(500)]
    assert all(e.cls in fl.present[e.query] for e in eps)
    assert all(len(set(e.supports)) == 2 and e.query not in e.supports and set(e.supports) <= set(fl.pools[e.cls]) for e in eps)
    # classes are drawn among the present ones: a multi-class query gets more than one class over the wraps
    multi = [q for q in fl.queries if len(fl.present[q]) > 1]
    if multi: assert len({e.cls for e in eps if e.query == multi[0]}) > 1

def test_episode_lists_byte_identical_across_processes(world):
    fl = build_fold_lists(world, 0, min_pixels=300)
    here = episodes_to_tsv(sample_pfenet(fl, 1, 200, seed=11)) + episodes_to_tsv(sample_hsnet(fl.pairs, 5, 200, 0))
    code = ("import sys; from clipfss_nb.data import *; fl = FoldLists.from_json(sys.stdin.read()); "
            "sys.stdout.write(episodes_to_tsv(sample_pfenet(fl, 1, 200, seed=11)) + episodes_to_tsv(sample_hsnet(fl.pairs, 5, 200, 0)))")
    other = subprocess.run([sys.executable, '-c', code], input=fl.to_json(), capture_output=True, text=True, check=True,
                           env={'PYTHONHASHSEED': '123', 'PATH': ''}).stdout
    assert other == here
    assert episodes_from_tsv(episodes_to_tsv([Episode('a', 3, ('b', 'c'))])) == [Episode('a', 3, ('b', 'c'))]

def test_sampler_errors(world):
    with pytest.raises(ValueError, match='no support image'): sample_hsnet([('a', 1), ('b', 2)], 1, 2)
    with pytest.raises(ValueError, match='support images besides'): sample_pfenet(build_fold_lists(world, 0, min_pixels=300), 40)

def test_class_file_list_literal_only(tmp_path):
    (tmp_path / 's.txt').write_text("{3: [['JPEGImages/x.jpg', 'SegmentationClassAug/x.png']]}")
    assert read_class_file_list(tmp_path / 's.txt') == {3: ['x']}
    (tmp_path / 'bad.txt').write_text("[x for x in ().__class__.__base__.__subclasses__()]")
    with pytest.raises(ValueError): read_class_file_list(tmp_path / 'bad.txt')
