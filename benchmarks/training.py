"""Episodic training throughput with and without the feature cache, measured side by side in one run.

    .venv/bin/python benchmarks/training.py [--steps 30] [--batch-size 8] [--threads 2]

The prior-guided decoder (VVP+VTP+PIR) on the shipped MiniCLIP, ShapeWorld-5i fold 0 at 128 px, 1-shot. "cached"
computes every CLIP feature and prior once (`FeatureStore.fill`) and trains on the stored tensors; "uncached" recomputes
them for every episode of every step (`FeatureStore(enabled=False)`), as a loop without a cache must. Both runs train
the same decoder on the same episodes. Prints episodes/s of each, the speed-up, the one-off cost of filling the
cache (and after how many steps it has paid for itself), the cache's size and the process's peak memory.
"""
import argparse, resource, tempfile, time
import torch
from accelerate import Accelerator
from clipfss_nb.backbone import load_backbone
from clipfss_nb.shapeworld import write_shapeworld
from clipfss_nb.data import VOCDataset
from clipfss_nb.priors import PriorConfig
from clipfss_nb.training import TrainConfig, TrainEpisodes, FeatureStore, base_class_pairs, train_episodic
from clipfss_nb.prior_decoder import PriorFeatures, PriorDecoder, PriorDecoderHead, store_batch

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--steps', type=int, default=30)
p.add_argument('--batch-size', type=int, default=8)
p.add_argument('--threads', type=int, default=2)
args = p.parse_args()
torch.set_num_threads(args.threads)

with tempfile.TemporaryDirectory() as d:
    write_shapeworld(d, n_train=300, n_val=0, size=128)
    train = VOCDataset(d, 'train')
    bb = load_backbone('miniclip-shapeworld', device='cpu', interpolation='bilinear')
    pairs, pools = base_class_pairs(train, 0, 'drop', 64)
    episodes = TrainEpisodes(tuple(pairs), pools, shots=1, views=1, seed=0)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=1e-3, log_every=args.steps)
    n_eps = args.steps * args.batch_size
    acc = Accelerator(cpu=True)
    res = {}
    for name, enabled in (('cached', True), ('uncached', False)):
        store = FeatureStore(PriorFeatures(bb, train.class_names, PriorConfig(shots='mean')), train, enabled=enabled)
        t0 = time.perf_counter(); store.fill(episodes, n_eps); fill = time.perf_counter() - t0
        torch.manual_seed(0)
        head = PriorDecoderHead(PriorDecoder(2 * bb.width, 64, 'vvp+vtp+pir'))
        t0 = time.perf_counter()
        train_episodic(head, lambda eps: store_batch(store, eps), episodes, cfg, accelerator=acc, progress=False)
        secs = time.perf_counter() - t0
        size = sum(t.nbytes for e in store.entries.values() for t in e.values())
        res[name] = dict(eps=n_eps / secs, secs=secs, fill=fill, size=size, calls=store.calls)
    c, u = res['cached'], res['uncached']
    print(f"{args.steps} steps x {args.batch_size} episodes, {args.threads} threads, {len(pairs)} training pairs (fold 0, 1-shot, 128 px)")
    print(f"  uncached: {u['eps']:7.1f} episodes/s ({u['secs']:.1f} s; {u['calls']} extractor calls during training)")
    print(f"  cached:   {c['eps']:7.1f} episodes/s ({c['secs']:.1f} s) after a {c['fill']:.1f} s fill of {c['calls']} entries ({c['size'] / 2**20:.0f} MiB)")
    print(f"  speed-up: {c['eps'] / u['eps']:.1f}x; the fill pays for itself after {c['fill'] / max(1e-9, 1 / u['eps'] - 1 / c['eps']) / args.batch_size:.0f} steps")
    print(f"  peak memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
