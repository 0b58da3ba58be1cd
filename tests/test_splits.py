"Reading every public split list shipped with the package (clipfss_nb/splits) with the counts its README states."
from collections import Counter
from pathlib import Path
import pytest
from clipfss_nb.data import (read_pairs, read_names, read_pfenet_list, group_pairs, lists_from_files, fold_classes,
                             sample_hsnet, sample_pfenet, episodes_sha256, splits_dir)

SPLITS = splits_dir()  # the shipped copy unless $CLIPFSS_SPLITS names another: never skipped

HSNET_VAL = {0: (346, 345, [80, 57, 86, 58, 65]), 1: (451, 433, [69, 96, 115, 102, 69]),
             2: (725, 587, [74, 125, 76, 72, 378]), 3: (346, 326, [58, 49, 90, 82, 67])}
HSNET_TRN = {0: (2286, [528, 428, 583, 371, 376]), 1: (3425, [367, 848, 987, 988, 235]),
             2: (5883, [504, 1122, 430, 440, 3387]), 3: (2086, [358, 277, 487, 488, 476])}
COCO_VAL = {0: (35783, 26052), 1: (17912, 15305), 2: (14563, 13138), 3: (14315, 12640)}
PFE_QUERY = {0: 364, 1: 445, 2: 592, 3: 336}
PFE_POOL = {0: (365, [81, 63, 89, 61, 71]), 1: (467, [70, 100, 118, 110, 69]),
            2: (734, [73, 125, 76, 74, 386]), 3: (357, [63, 53, 90, 82, 69])}
OVERLAP = {0: (343, 3, 22), 1: (451, 0, 16), 2: (717, 8, 17), 3: (345, 1, 12)}

@pytest.mark.parametrize('fold', range(4))
def test_hsnet_pascal_val(fold):
    pairs = read_pairs(SPLITS / f'hsnet/pascal/val/fold{fold}.txt')
    n, distinct, per_class = HSNET_VAL[fold]
    assert len(pairs) == n and len({p for p, _ in pairs}) == distinct
    assert [len(v) for v in group_pairs(pairs).values()] == per_class
    assert sorted(group_pairs(pairs)) == fold_classes(fold)

@pytest.mark.parametrize('fold', range(4))
def test_hsnet_pascal_trn(fold):
    pairs = read_pairs(SPLITS / f'hsnet/pascal/trn/fold{fold}.txt')
    n, per_class = HSNET_TRN[fold]
    assert len(pairs) == n and [len(v) for v in group_pairs(pairs).values()] == per_class

def test_hsnet_pascal_trn_union_disjoint_from_val():
    trn = {p for f in range(4) for p, _ in read_pairs(SPLITS / f'hsnet/pascal/trn/fold{f}.txt')}
    val = {p for f in range(4) for p, _ in read_pairs(SPLITS / f'hsnet/pascal/val/fold{f}.txt')}
    voc_val = {Path(i).stem for i, _ in read_pfenet_list(SPLITS / 'PFENet/pascal/val.txt')}
    assert len(trn) == 10092 and not trn & voc_val and val <= voc_val

def test_hsnet_fss():
    assert [len(read_names(SPLITS / f'hsnet/fss/{s}.txt')) for s in ('trn', 'val', 'test')] == [520, 240, 240]

@pytest.mark.parametrize('fold', range(4))
def test_hsnet_coco_val(fold):
    pairs = read_pairs(SPLITS / f'hsnet/coco/val/fold{fold}.txt')
    assert (len(pairs), len({p for p, _ in pairs})) == COCO_VAL[fold]
    assert sorted({c for _, c in pairs}) == sorted(fold_classes(fold, 80, convention='interleaved'))

def test_pfenet_base_lists():
    counts = {n: len(read_pfenet_list(SPLITS / f'PFENet/pascal/{n}.txt'))
              for n in ('val', 'voc_original_train', 'sbd_data', 'voc_sbd_merge_noduplicate')}
    assert counts == dict(val=1449, voc_original_train=1464, sbd_data=5623, voc_sbd_merge_noduplicate=5953)

@pytest.mark.parametrize('fold', range(4))
def test_pfenet_filtered_lists(fold):
    d = SPLITS / 'VRP-SAM/pascal_pfenet_filtered/val'
    lists = lists_from_files(d / f'fold{fold}_query_images.txt', d / f'fold{fold}_class_pool.txt', fold, fold_classes(fold))
    assert len(lists.queries) == PFE_QUERY[fold]
    n, per_class = PFE_POOL[fold]
    assert sum(map(len, lists.pools.values())) == n and [len(lists.pools[c]) for c in lists.classes] == per_class
    assert {q for q in lists.queries} == {i for v in lists.pools.values() for i in v}  # a query = an image with a qualifying class
    hs = set(read_pairs(SPLITS / f'hsnet/pascal/val/fold{fold}.txt')); pf = set(lists.pairs)
    assert (len(hs & pf), len(hs - pf), len(pf - hs)) == OVERLAP[fold]

def test_hsnet_sampler_facts_from_spec():
    "Spec §2.4/§8: ~541/1000 'person' episodes on fold 2; ~13% of 5-shot fold-0 episodes repeat a support."
    eps = sample_hsnet(read_pairs(SPLITS / 'hsnet/pascal/val/fold2.txt'), 1)
    assert Counter(e.cls for e in eps)[15] == 541
    eps5 = sample_hsnet(read_pairs(SPLITS / 'hsnet/pascal/val/fold0.txt'), 5)
    assert sum(len(set(e.supports)) < 5 for e in eps5) == 133

def test_pfenet_sampler_on_filtered_lists():
    d = SPLITS / 'VRP-SAM/pascal_pfenet_filtered/val'
    lists = lists_from_files(d / 'fold0_query_images.txt', d / 'fold0_class_pool.txt', 0, fold_classes(0))
    eps = sample_pfenet(lists, 5, 1000, seed=321)
    assert [e.query for e in eps[:364]] == lists.queries and eps[364].query == lists.queries[0]
    assert all(len(set(e.supports)) == 5 and e.query not in e.supports for e in eps)
    assert episodes_sha256(eps) == episodes_sha256(sample_pfenet(lists, 5, 1000, seed=321))

def test_golden_episode_hashes():
    "Episode lists are data: these digests must be the same on every machine (numpy's legacy RandomState stream is frozen)."
    h = sample_hsnet(read_pairs(SPLITS / 'hsnet/pascal/val/fold0.txt'), 1)
    assert [(e.query, e.cls, e.supports) for e in h[:2]] == [('2007_000033', 1, ('2010_001174',)), ('2007_000061', 4, ('2007_005705',))]
    assert episodes_sha256(h) == '5ea4e942e7de1193ed3e3f05245c38e6624893707d503271a2a5d22e2c75f36d'
    d = SPLITS / 'VRP-SAM/pascal_pfenet_filtered/val'
    p = sample_pfenet(lists_from_files(d / 'fold0_query_images.txt', d / 'fold0_class_pool.txt', 0, fold_classes(0)), 1, 1000, 321)
    assert episodes_sha256(p) == '36e5d02bd5acae283ef94b75c0ea3aad8c4f7fac1cea455db3d07689ef00c860'
