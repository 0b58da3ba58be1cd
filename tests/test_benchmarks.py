"COCO-20i and FSS-1000 as HSNet runs them: readers on generated data in the real layouts, HSNet's sampling rule of each benchmark replayed, episode defaults, seed counts, the missing-class refusal, and clipfss-eval end to end."
import json, os, shutil, subprocess, sys, warnings
from collections import Counter
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from clipfss_nb.data import (COCODataset, FSS1000Dataset, VOCDataset, Episode, make_coco_like, make_fss_like, make_voc_like,
                             find_coco_root, render_coco_label, fss_categories, fss_list_ids, sample_hsnet, sample_hsnet_coco,
                             sample_hsnet_fss, episode_counts, read_pairs, group_pairs, fold_classes, splits_dir,
                             episodes_sha256, episodes_from_tsv, protocol_seeds, COCO_CATEGORY_IDS)
from clipfss_nb.evaluate import episode_lists, default_episodes, resolve_seeds, BENCHMARKS
from clipfss_nb.cli import clipfss_eval

SPLITS = splits_dir()

# ---------- fixtures in the real on-disk layouts ----------
@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_like(tmp_path_factory.mktemp('coco') / 'Datasets_HSN', n=160)

@pytest.fixture(scope='module')
def fss_root(tmp_path_factory):
    "All 240 official test categories, 10 tiny images each, HSNet's `Datasets_HSN/FSS-1000/<category>/<n>.jpg` layout."
    root = tmp_path_factory.mktemp('fss') / 'Datasets_HSN'
    make_fss_like(root / 'FSS-1000', fss_categories('test'), size=(8, 8))
    return root

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return VOCDataset(make_voc_like(tmp_path_factory.mktemp('sw') / 'sw', n=60, seed=2))

def _reference_coco(pools, classes, shots, episodes, seed=0):
    "HSNet's data/coco.py load_frame, as the spec describes it: np.random.choice(…, 1, replace=False) from one stream."
    rs, out = np.random.RandomState(seed), []
    for _ in range(episodes):
        c = rs.choice(classes, 1, replace=False)[0]
        q = rs.choice(pools[c], 1, replace=False)[0]
        sup = []
        while True:
            s = rs.choice(pools[c], 1, replace=False)[0]
            if s != q: sup.append(s)
            if len(sup) == shots: break
        out.append(Episode(str(q), int(c), tuple(str(s) for s in sup)))
    return out

def _reference_fss(ids, classes, shots, seed=0):
    "HSNet's data/fss.py sample_episode: query = image idx; supports = choice(range(1, 11)) ≠ query."
    rs, out = np.random.RandomState(seed), []
    for q in ids:
        cat, sup = q.rsplit('/', 1)[0], []
        while True:
            s = f'{cat}/{rs.choice(range(1, 11), 1, replace=False)[0]}'
            if s != q: sup.append(s)
            if len(sup) == shots: break
        out.append(Episode(q, classes[cat], tuple(sup)))
    return out

# ---------- COCO-20i reader ----------
@pytest.mark.parametrize('sub', ['COCO2014', 'MSCOCO2014', '.'])
def test_coco_layouts(tmp_path, coco_root, sub):
    dst = tmp_path / 'r' / sub
    shutil.copytree(coco_root / 'COCO2014', dst)
    png, js = COCODataset(tmp_path / 'r'), COCODataset(tmp_path / 'r', labels='json')
    assert (png.labels, js.labels, len(png), png.ids) == ('png', 'json', 160, js.ids)
    assert png.ids[0] == 'val2014/COCO_val2014_000000000001.jpg' and png.image_path(png.ids[0]).is_file()
    shutil.rmtree(dst / 'annotations' / 'val2014')
    assert COCODataset(tmp_path / 'r').labels == 'json'  # auto falls back to the instance JSON
    with pytest.raises(FileNotFoundError, match='annotations/val2014'): COCODataset(tmp_path / 'r', labels='png')

def test_coco_json_and_png_labels_agree(coco_root):
    png, js = COCODataset(coco_root), COCODataset(coco_root, labels='json')
    seen = set()
    for id in png.ids:
        a, b = png.load_label(id), js.load_label(id)
        assert a.dtype == np.uint8 and (a == b).all()
        seen |= set(np.unique(a).tolist())
    assert seen <= set(range(81)) and len(seen - {0}) == 80  # every class, nothing outside 0..80
    assert js.class_names == png.class_names and js.class_name(80) == 'toothbrush' and js.class_name(1) == 'person'

def test_coco_category_ids_map_to_contiguous_classes(coco_root):
    js = COCODataset(coco_root, labels='json')
    assert js._cat[90] == 80 and js._cat[13] == 12 and js._cat[27] == 25 and len(COCO_CATEGORY_IDS) == 80
    # the RLE object of image 0 (category id → class) is rendered on exactly its pixels when no higher class overlaps it
    from pycocotools import mask as mu
    ann = [a for a in js._anns[1] if isinstance(a['segmentation'], dict) and not a['iscrowd']][0]
    m = mu.decode(ann['segmentation']).astype(bool)
    lab = js.load_label(js.ids[0])
    assert (lab[m] == js._cat[ann['category_id']]).all() or (lab[m] >= js._cat[ann['category_id']]).all()

def test_coco_crowd_rule(coco_root):
    id = 'val2014/COCO_val2014_000000000001.jpg'  # image 0 has a crowd strip bottom-left
    lab = {c: COCODataset(coco_root, labels='json', crowd=c).load_label(id) for c in ('class', 'ignore', 'skip')}
    crowd = (lab['class'] != lab['skip'])
    assert crowd.any() and (lab['ignore'][crowd] == 255).all() and (lab['skip'][crowd] == 0).all()
    with pytest.raises(ValueError, match='crowd must be'): COCODataset(coco_root, labels='json', crowd='drop')

def test_coco_folds_both_conventions(coco_root):
    inter, cont = COCODataset(coco_root), BENCHMARKS['coco-contiguous'](coco_root, None)
    assert inter.fold_classes(0) == [4 * k + 1 for k in range(20)] and cont.fold_classes(3) == list(range(61, 81))
    for f in range(4):  # the shipped HSNet lists use the interleaved folds
        assert sorted({c for _, c in read_pairs(SPLITS / f'hsnet/coco/val/fold{f}.txt')}) == inter.fold_classes(f)
    assert sorted(c for f in range(4) for c in cont.fold_classes(f)) == list(range(1, 81))

def test_coco_bad_inputs(tmp_path, coco_root):
    shutil.copytree(coco_root / 'COCO2014', tmp_path / 'COCO2014')
    js = tmp_path / 'COCO2014/annotations/instances_val2014.json'
    d = json.loads(js.read_text()); d['categories'] = d['categories'][:79]; js.write_text(json.dumps(d))
    with pytest.raises(ValueError, match='79 categories'): COCODataset(tmp_path, labels='json')
    with pytest.raises(FileNotFoundError, match='no COCO layout'): find_coco_root(tmp_path / 'COCO2014' / 'val2014')
    with pytest.raises(ValueError, match='COCO split'): COCODataset(tmp_path, split='val2017')

def test_render_overlap_and_rle_forms():
    full = dict(category_id=5, iscrowd=0, segmentation=dict(size=[4, 4], counts=[0, 16]))  # uncompressed RLE: all pixels
    poly = dict(category_id=2, iscrowd=0, segmentation=[[0.0, 0.0, 2.0, 0.0, 2.0, 2.0, 0.0, 2.0]])
    lab = render_coco_label([full, poly], 4, 4, {2: 7, 5: 3})
    assert set(np.unique(lab).tolist()) == {3, 7} and (lab == 7).sum() < 16  # class 7 painted over class 3
    assert (render_coco_label([], 4, 4, {}) == 0).all()

# ---------- HSNet's COCO rule ----------
@pytest.mark.parametrize('fold,shots,n', [(0, 1, 1000), (1, 5, 300), (2, 1, 1000), (3, 1, 1000)])
def test_hsnet_coco_sampler_replays_hsnet(fold, shots, n):
    pools = group_pairs(read_pairs(SPLITS / f'hsnet/coco/val/fold{fold}.txt'))
    classes = fold_classes(fold, 80, convention='interleaved')
    eps = sample_hsnet_coco(pools, classes, shots, n)
    assert eps == _reference_coco(pools, classes, shots, n)
    counts = episode_counts(eps, classes)
    assert min(counts.values()) > 0 and set(counts) == set(classes)  # uniform over classes: every class gets episodes
    assert all(e.query not in e.supports and set(e.supports) <= set(pools[e.cls]) for e in eps)

def test_hsnet_coco_golden_and_uniformity():
    pools = group_pairs(read_pairs(SPLITS / 'hsnet/coco/val/fold0.txt'))
    classes = fold_classes(0, 80, convention='interleaved')
    eps = sample_hsnet_coco(pools, classes)
    assert eps[0] == Episode('val2014/COCO_val2014_000000507081.jpg', 73, ('val2014/COCO_val2014_000000486122.jpg',))
    assert episodes_sha256(eps) == 'a7532e4f0acb1f042c34964625fd27dc717a1c2e9c77b5c7eb76f2feaf06dced'
    c = episode_counts(eps, classes)
    assert 30 <= min(c.values()) and max(c.values()) <= 75  # 50 expected per class
    walked = sample_hsnet(read_pairs(SPLITS / 'hsnet/coco/val/fold0.txt'), 1, 1000)  # PASCAL's rule on a COCO list
    assert sum(v > 0 for v in episode_counts(walked, classes).values()) <= 2

def test_hsnet_coco_sampler_errors():
    with pytest.raises(ValueError, match='no class'): sample_hsnet_coco({}, [1, 2])
    with pytest.raises(ValueError, match='1 image'): sample_hsnet_coco({1: ['a', 'a']}, [1])
    eps = sample_hsnet_coco({1: ['a', 'b'], 2: []}, [1, 2], episodes=20)  # an empty class is never drawn …
    assert {e.cls for e in eps} == {1}
    with pytest.raises(ValueError, match='get no episode'):  # … and the fold is refused by episode_lists' check
        from clipfss_nb.evaluate import check_coverage; check_coverage({0: eps}, [1, 2])

# ---------- FSS-1000 ----------
def test_fss_reader_real_layout(fss_root):
    ds = FSS1000Dataset(fss_root)
    cats = fss_categories('test')
    assert len(ds) == 2400 and ds.fold_classes(0) == list(range(1, 241)) and ds.class_names[1] == cats[0] == sorted(cats)[0]
    assert ds.ids[:3] == [f'{cats[0]}/1', f'{cats[0]}/10', f'{cats[0]}/2'] and ds.ids == fss_list_ids(cats)
    id = ds.ids[25]
    m = np.asarray(Image.open(ds.label_path(id)))
    assert ((ds.load_label(id) > 0) == (m >= 128)).all() and set(np.unique(ds.load_label(id)).tolist()) == {0, ds.class_of(id)}
    assert ds.describe()['split'] == 'test' and BENCHMARKS['fss'](fss_root, None).ids == ds.ids

def test_fss_reader_layouts_and_masks(tmp_path):
    make_fss_like(tmp_path / 'FSS-1000' / 'data', ['b', 'a'], size=(6, 6))  # Matcher / GF-SAM layout
    (tmp_path / 'c.txt').write_text('a\nb\n')
    rgb = np.zeros((6, 6, 3), np.uint8); rgb[:3] = (255, 0, 0); rgb[3:] = (255, 255, 255)  # red → L 76 (< 128): background
    Image.fromarray(rgb).save(tmp_path / 'FSS-1000/data/a/3.png')
    ds = FSS1000Dataset(tmp_path, split_file=tmp_path / 'c.txt')
    assert ds.data_root == (tmp_path / 'FSS-1000' / 'data').resolve() and len(ds) == 20
    lab = ds.load_label('a/3')
    assert (lab[:3] == 0).all() and (lab[3:] == 1).all()  # PIL's greyscale conversion, then >= 128, as HSNet
    (tmp_path / 'd.txt').write_text('a\nb\nzzz\n')
    with pytest.raises(FileNotFoundError, match="1 of the 3 FSS-1000"): FSS1000Dataset(tmp_path, split_file=tmp_path / 'd.txt')
    with pytest.raises(ValueError, match='split must be'): FSS1000Dataset(tmp_path, split='dev')
    with pytest.raises(ValueError, match='uint8'): FSS1000Dataset(tmp_path, split='trn')

@pytest.mark.parametrize('shots', [1, 5])
def test_hsnet_fss_sampler_on_the_test_list(shots):
    cats = fss_categories('test')
    ids, classes = fss_list_ids(cats), {c: i + 1 for i, c in enumerate(cats)}
    eps = sample_hsnet_fss(ids, classes, shots)
    assert eps == _reference_fss(ids, classes, shots)
    assert len(eps) == 2400 and [e.query for e in eps] == ids
    assert all(e.cls == i // 10 + 1 for i, e in enumerate(eps))  # episode i → sorted category i // 10, file-name order inside
    assert all(e.query not in e.supports and all(s.rsplit('/', 1)[0] == e.query.rsplit('/', 1)[0] and 1 <= int(s.rsplit('/', 1)[1]) <= 10
                                                 for s in e.supports) for e in eps)
    assert set(Counter(e.cls for e in eps).values()) == {10}
    if shots == 5:  # spec: about 74% of 5-shot episodes repeat a support (9 candidates, independent draws)
        assert 0.70 < sum(len(set(e.supports)) < 5 for e in eps) / 2400 < 0.78
    else: assert episodes_sha256(eps) == '5162af4474370002be48285a6eab67de79732016d598e00c0381169b1fe86c3f'

# ---------- episode_lists: defaults, seeds, refusal ----------
def test_episode_defaults(fss_root, coco_root, world):
    pascal_like = VOCDataset(world.root); pascal_like.name = 'pascal'
    assert default_episodes(pascal_like) == 1000 and default_episodes(COCODataset(coco_root)) == 1000
    assert default_episodes(FSS1000Dataset(fss_root)) == 2400 and default_episodes(world) == 1000
    eps, meta = episode_lists(FSS1000Dataset(fss_root), 0, seeds=2)
    assert sorted(eps) == [0, 1] and all(len(e) == 2400 for e in eps.values()) and meta['episodes_per_class'] == dict(min=10, max=10)
    assert eps[1] == sample_hsnet_fss(fss_list_ids(fss_categories('test')), {c: i + 1 for i, c in enumerate(fss_categories('test'))}, 1, None, 1)

def test_seed_counts():
    assert resolve_seeds(10) == list(range(10)) and resolve_seeds(10, 'pfenet') == protocol_seeds(10)
    assert resolve_seeds([7]) == [7] and resolve_seeds(None, 'pfenet') == [321]
    with pytest.raises(ValueError, match='seed count'): resolve_seeds(1000)

def test_coco_episode_lists(coco_root):
    ds = COCODataset(coco_root)
    with pytest.raises(FileNotFoundError, match='are not in'): episode_lists(ds, 0)
    eps, meta = episode_lists(ds, 1, 2, list_file='masks', min_pixels=100, seeds=[3])
    assert meta['sampler'].startswith('hsnet-coco') and len(eps[3]) == 1000 and not meta['missing_classes']
    # a list file in HSNet's format gives exactly the sampler's episodes
    lst = Path(coco_root) / 'fold1.txt'
    pools = {c: [i for i in ds.ids if (ds.load_label(i) == c).sum() >= 100] for c in ds.fold_classes(1)}
    lst.write_text(''.join(f'{i}__{c}\n' for c in pools for i in pools[c]))
    e2, m2 = episode_lists(ds, 1, 2, list_file=lst, seeds=[3])
    assert e2[3] == sample_hsnet_coco(pools, ds.fold_classes(1), 2, 1000, 3) == eps[3] and m2['list_source'] == str(lst)
    pf, pm = episode_lists(ds, 1, 1, 'pfenet', min_pixels=100, episodes=200)  # PFENet's rule: queries in order, class among present
    assert pm['sampler'].startswith('pfenet') and len(pf[321]) == 200

def test_missing_class_refusal(world):
    with pytest.raises(ValueError, match='get no episode'): episode_lists(world, 0, episodes=2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        eps, meta = episode_lists(world, 0, episodes=2, allow_missing_classes=True)
    assert meta['missing_classes']['0'] and any('MISSING CLASSES' in str(x.message) for x in w)

# ---------- clipfss-eval end to end ----------
def _eval(*args):
    "clipfss-eval in a new process, as a console runs it."
    code = 'import sys; from clipfss_nb.cli import clipfss_eval; clipfss_eval.main(sys.argv[1:])'
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=900)

def _main(*args) -> int:
    "clipfss-eval in this process (what the console script calls); its exit status."
    try: clipfss_eval.main([str(a) for a in args])
    except SystemExit as e: return e.code
    return 0

def test_cli_coco(coco_root, tmp_path, capsys):
    out = tmp_path / 'c.json'
    assert _main('--benchmark', 'coco', '--root', coco_root, '--fold', 2, '--list-file', 'masks', '--min-pixels', 100, '--seeds', 2,
                 '--episodes', 150, '--method', 'support-copy', '--img-size', 24, '--device', 'cpu', '--quiet', '--out', out) == 0
    r = json.loads(out.read_text())
    assert r['protocol']['seeds'] == [0, 1] and r['protocol']['episodes'] == 150 and r['protocol']['fold_classes'] == fold_classes(2, 80, convention='interleaved')
    assert r['protocol']['sampler'].startswith('hsnet-coco') and r['dataset']['convention'] == 'interleaved' and r['protocol']['split'] == 'val2014'
    res = r['results']
    assert set(res['per_seed']) == {'0', '1'} and 'best' not in json.dumps(res)
    assert res['miou'] == pytest.approx(np.mean([v['miou'] for v in res['per_seed'].values()]))
    assert res['miou_std'] == pytest.approx(np.std([v['miou'] for v in res['per_seed'].values()]))
    assert all(v['empty_classes'] == [] for v in res['per_seed'].values())
    capsys.readouterr()
    assert _main('--benchmark', 'coco', '--root', coco_root, '--quiet', '--out', tmp_path / 'x.json') == 2  # shipped lists name real COCO images
    err = capsys.readouterr().err
    assert 'are not in' in err and len(err.strip().splitlines()) == 1

def test_cli_fss_defaults(fss_root, tmp_path):
    out = tmp_path / 'f.json'
    assert _main('--benchmark', 'fss', '--root', fss_root, '--shots', 5, '--method', 'all-foreground', '--img-size', 8,
                 '--device', 'cpu', '--quiet', '--out', out) == 0
    r = json.loads(out.read_text())
    assert r['protocol']['episodes'] == 2400 and r['protocol']['seeds'] == [0] and len(r['protocol']['fold_classes']) == 240
    assert r['protocol']['split'] == 'test' and r['protocol']['sampler'].startswith('hsnet-fss')
    cats = fss_categories('test')
    want = sample_hsnet_fss(fss_list_ids(cats), {c: i + 1 for i, c in enumerate(cats)}, 5)
    assert episodes_from_tsv(Path(f'{out}.episodes.seed0.tsv').read_text()) == want
    assert r['results']['per_seed']['0']['episodes'] == 2400 and len(r['results']['class_iou']) == 240

def test_cli_seed_count(world, tmp_path, capsys):
    out = tmp_path / 's.json'
    assert _main('--root', world.root, '--seeds', 3, '--episodes', 60, '--min-pixels', 300, '--img-size', 32, '--quiet', '--out', out) == 0
    r = json.loads(out.read_text())
    assert r['protocol']['seeds'] == [0, 1, 2] and len(r['results']['per_seed']) == 3 and 'miou_std' in r['results']
    assert _main('--root', world.root, '--protocol', 'pfenet', '--seeds', 2, '--episodes', 60, '--min-pixels', 300, '--img-size', 32,
                 '--quiet', '--out', out) == 0
    assert json.loads(out.read_text())['protocol']['seeds'] == protocol_seeds(2)
    assert _main('--root', world.root, '--seeds', 'x', '--quiet', '--out', tmp_path / 'n.json') == 2
    assert '--seeds takes' in capsys.readouterr().err

def test_cli_missing_classes(world, tmp_path):
    p = _eval('--root', world.root, '--episodes', 2, '--min-pixels', 300, '--quiet', '--out', tmp_path / 'm.json')
    assert p.returncode == 2 and 'get no episode' in p.stderr and '--allow-missing-classes' in p.stderr and len(p.stderr.strip().splitlines()) == 1
    with pytest.warns(UserWarning, match='MISSING CLASSES'):
        assert _main('--root', world.root, '--episodes', 2, '--min-pixels', 300, '--img-size', 32, '--quiet', '--allow-missing-classes',
                     '--out', tmp_path / 'm.json') == 0
    assert json.loads((tmp_path / 'm.json').read_text())['protocol']['missing_classes']['0']
