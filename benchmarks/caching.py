"""How many backbone passes per-image feature caching saves on PASCAL-5i-like episode lists.

Builds the episodes from the public lists in shared/splits (no images needed): the PFENet-filtered
PASCAL val lists (VRP-SAM copy, ~364 query images for fold 0) with the PFENet sampler, and HSNet's
split files with the HSNet sampler. Without caching every episode runs the backbone on 1 + K images;
with caching (what `clipfss_nb.evaluate.evaluate` does for `cacheable` methods) once per distinct image,
and the cache is shared by all seeds of one evaluation (PFENet-family protocols: 5-10 seeds x 1000 episodes).
Note the bound: one 1-shot seed of 1000 episodes over ~364 images has at most 2000 image slots, so
no per-image cache can save more than 2000/364 = 5.5x there; 5-shot and multi-seed runs save far more.
Also simulates a bounded LRU cache (`--cache-size`) to show how much memory the saving needs.

    python benchmarks/caching.py [--episodes 1000] [--seed 321]
"""
import argparse
import sys
from clipfss_nb.data import (read_pairs, lists_from_files, fold_classes, sample_hsnet, sample_pfenet, splits_dir, protocol_seeds)
from clipfss_nb.evaluate import FeatureCache

def passes(episodes, cache_size=None):
    "Backbone passes (misses) of an LRU feature cache of `cache_size` images over the episode list."
    c = FeatureCache(True, cache_size)
    for e in episodes:
        for i in (e.query, *e.supports): c.get(i, lambda: None)
    return c.misses

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--episodes', type=int, default=1000)
    ap.add_argument('--seed', type=int, default=321, help='PFENet sampler seed (HSNet uses 0)')
    args = ap.parse_args()
    sd = splits_dir()
    if sd is None: sys.exit('shared/splits not found: set CLIPFSS_SPLITS')
    vrp = sd / 'VRP-SAM/pascal_pfenet_filtered/val'
    print(f"{'fold':>4} {'protocol':>8} {'K':>2} {'queries':>7} {'no cache':>8} {'cached':>6} {'saving':>7} "
          f"{'LRU64':>6} {'LRU256':>6}")
    table = []
    for fold in range(4):
        lists = lists_from_files(vrp / f'fold{fold}_query_images.txt', vrp / f'fold{fold}_class_pool.txt', fold, fold_classes(fold))
        pairs = read_pairs(sd / f'hsnet/pascal/val/fold{fold}.txt')
        for shots in (1, 5):
            runs = [('pfenet', sample_pfenet(lists, shots, args.episodes, args.seed)),
                    ('hsnet', sample_hsnet(pairs, shots, args.episodes, 0))]
            for n in (5, 10):  # BAM: 5 seeds; HDMNet / PI-CLIP: 10 seeds, one evaluation (one cache)
                runs.append((f'pfe x{n}', [e for sd_ in protocol_seeds(n) for e in sample_pfenet(lists, shots, args.episodes, sd_)]))
            for proto, eps in runs:
                n_q = len({e.query for e in eps})
                off, on = len(eps) * (1 + shots), passes(eps)
                table.append((fold, proto, shots, off / on))
                print(f"{fold:>4} {proto:>8} {shots:>2} {n_q:>7} {off:>8} {on:>6} {off / on:>6.1f}x "
                      f"{passes(eps, 64):>6} {passes(eps, 256):>6}")
    for proto in ('pfenet', 'hsnet', 'pfe x5', 'pfe x10'):
        for shots in (1, 5):
            xs = [r for f, p, k, r in table if p == proto and k == shots]
            print(f"{proto:>8} {shots}-shot: {min(xs):5.1f}x .. {max(xs):5.1f}x fewer backbone passes over the 4 folds"
                  + ('  (goal >= 10x: met)' if min(xs) >= 10 else '  (goal >= 10x: not reachable by any per-image cache here)' if shots == 1 and proto in ('pfenet', 'hsnet') else ''))

if __name__ == '__main__': main()
