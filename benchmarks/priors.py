"""Time per query of PI-CLIP's priors, side by side in one run: the per-image fp32 reference, the batched fp32 path,
the fp32 floor and the batched bf16 path.

    python benchmarks/priors.py                          # ViT-B/16 (random weights), 473×473, 1-shot, batches 1,2,8, 3 rounds
    python benchmarks/priors.py --size 320 --rounds 1    # quicker
    python benchmarks/priors.py --device cuda            # GPU (bf16 then means the GPU's bf16)

- *reference*: the slow per-image implementation written from the paper and the official code
  (`tests/reference_priors.py`), one query at a time;
- *batched fp32*: `compute_priors` on a batch of B episodes;
- *floor*: the three bare no-grad fp32 ViT passes per query (the VTP input, the VVP query, the masked support) that
  any code computing these priors must run, at the same batch, every block through the fused attention kernel.
  The priors cannot all run that way: the VTP pass must write the attention weights of its last eight blocks (PIR
  averages them), which the fused kernel never materialises, and back-propagate through its last block; those two
  are the batched path's distance to the floor. The *mha floor* runs the same three passes through open_clip's own
  blocks (`nn.MultiheadAttention`), the floor as it was before the fused kernel was used;
- *batched bf16*: `compute_priors` with the same weights stored in bf16, at the largest batch.

The machine is shared and noisy, so the variants are interleaved in rounds and each figure is the median over
rounds (ratios: the median of the per-round ratios). The script checks that the batched fp32 priors equal the
reference (max |Δ| < 1e-4, box masks identical) and prints how far the bf16 priors are from fp32
(`compare_priors`). It states the goals of issue 21 and whether this machine meets them: batched bf16 ≥ 3× the
reference; batched fp32 ≥ 1.0× the reference and ≤ 1.05× the floor at every batch. A CPU without bf16 instructions
(see the flags line) emulates bf16 and cannot meet the first goal; `precision='auto'` then stays in fp32.
"""
import argparse, statistics, sys, time
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_priors import ref_priors
from machine import cpu_description
from clipfss_nb.backbone import load_backbone
from clipfss_nb.priors import compute_priors, compare_priors
from clipfss_nb.vtp import vtp_input
from clipfss_nb.prompts import mask_image
from clipfss_nb.core import IMAGENET_MEAN, IMAGENET_STD, normalize


def episodes(n, size, shots):
    "`n` smooth random queries and supports with a box mask, in [0, 1]."
    g = torch.Generator().manual_seed(0)
    imgs = torch.nn.functional.interpolate(torch.rand(n * (shots + 1), 3, 8, 8, generator=g), size=(size, size), mode='bicubic').clamp(0, 1)
    masks = torch.zeros(n * (shots + 1), size, size, dtype=torch.uint8)
    masks[:, size // 4: 3 * size // 4, size // 5: 3 * size // 5] = 1
    return imgs[:n], imgs[n:].reshape(n, shots, 3, size, size), masks[n:].reshape(n, shots, size, size), [f'class{i}' for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batches', default='1,2,8', help='batch sizes of the batched paths (comma-separated)')
    ap.add_argument('--size', type=int, default=473); ap.add_argument('--shots', type=int, default=1)
    ap.add_argument('--rounds', type=int, default=3); ap.add_argument('--device', default='cpu')
    ap.add_argument('--backbone', default='ViT-B-16'); ap.add_argument('--threads', type=int, default=None)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    batches = sorted({int(b) for b in a.batches.split(',')})
    dev, n = torch.device(a.device), max(batches)
    torch.manual_seed(0)
    bb = load_backbone(a.backbone, device=a.device, precision='fp32', interpolation='bilinear')
    bb16 = load_backbone(a.backbone, device=a.device, precision='bf16', interpolation='bilinear')
    bb16.clip.load_state_dict(bb.clip.state_dict())  # the same random weights, stored in bf16
    q, s, m, names = episodes(n, a.size, a.shots)
    q, s, m = q.to(dev), s.to(dev), m.to(dev)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    L = bb.n_blocks

    def timed(fn):
        sync(); t0 = time.perf_counter(); out = fn(); sync(); return time.perf_counter() - t0, out

    def open_clip_pass(pixels):  # every block through open_clip's own forward (nn.MultiheadAttention)
        x, _ = bb.embed(pixels, 'bilinear')
        for block in bb.visual.transformer.resblocks: x = block(x)
        return bb._project(x)

    def floor(B, run=lambda pixels: bb(pixels, interpolation='bilinear')):
        run(vtp_input(bb, q[:B]))
        run(normalize(q[:B], IMAGENET_MEAN, IMAGENET_STD))
        run(mask_image(normalize(s[:B].flatten(0, 1), IMAGENET_MEAN, IMAGENET_STD), m[:B].flatten(0, 1)))

    print(cpu_description())
    print(f"{bb!r} on {dev} | {a.size}x{a.size}, {a.shots}-shot | batches {batches} | median of {a.rounds} interleaved rounds")
    with torch.no_grad():  # warm-up: library initialisation, positional-embedding and text caches
        compute_priors(bb, q[:1], s[:1], m[:1], names[:1]); compute_priors(bb16, q[:1], s[:1], m[:1], names[:1]); floor(1)
    times = {k: [] for k in ['reference'] + [f'{kind} {B}' for B in batches for kind in ('batched', 'floor', 'mha floor')] + [f'bf16 {n}']}
    outputs = {}
    for _ in range(a.rounds):
        t, refs = timed(lambda: [ref_priors(bb, q[b], list(s[b]), list(m[b]), names[b], blocks=(L - 1, L - 2)) for b in range(n)])
        times['reference'].append(t / n)
        with torch.no_grad():
            for B in batches:
                t, outputs[B] = timed(lambda: compute_priors(bb, q[:B], s[:B], m[:B], names[:B])); times[f'batched {B}'].append(t / B)
                t, _ = timed(lambda: floor(B)); times[f'floor {B}'].append(t / B)
                t, _ = timed(lambda: floor(B, open_clip_pass)); times[f'mha floor {B}'].append(t / B)
            t, outputs['bf16'] = timed(lambda: compute_priors(bb16, q, s, m, names)); times[f'bf16 {n}'].append(t / n)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = lambda num, den: statistics.median([x / y for x, y in zip(times[num], times[den])])
    print(f"\n{'':34}{'batch':>6}{'s / query':>11}{'speed-up vs reference':>24}{'time / floor':>14}{'time / mha floor':>18}")
    print(f"{'reference fp32 (per image)':34}{1:>6}{med['reference']:11.3f}{'1.00x':>24}")
    for B in batches:
        print(f"{'batched fp32':34}{B:>6}{med[f'batched {B}']:11.3f}{ratio('reference', f'batched {B}'):23.2f}x"
              f"{ratio(f'batched {B}', f'floor {B}'):13.3f}x{ratio(f'batched {B}', f'mha floor {B}'):17.3f}x")
        print(f"{'floor fp32 (3 fused passes)':34}{B:>6}{med[f'floor {B}']:11.3f}{ratio('reference', f'floor {B}'):23.2f}x")
        print(f"{'mha floor fp32 (3 open_clip passes)':34}{B:>6}{med[f'mha floor {B}']:11.3f}{ratio('reference', f'mha floor {B}'):23.2f}x")
    bf16_speedup = ratio('reference', f'bf16 {n}')
    print(f"{'batched bf16':34}{n:>6}{med[f'bf16 {n}']:11.3f}{bf16_speedup:23.2f}x")

    err = max(float(np.abs(getattr(outputs[n], k)[b].cpu().numpy() - refs[b][k]).max()) for b in range(n) for k in ('vtp', 'vtp_refined', 'vvp'))
    boxes = all((outputs[n].boxes[b].cpu().numpy() == refs[b]['boxes']).all() for b in range(n))
    agree = compare_priors(outputs[n], outputs['bf16'])
    print(f"\nbatched fp32 = reference: max |Δ| = {err:.1e} (< 1e-4: {err < 1e-4}), box masks identical: {boxes}")
    print("bf16 vs fp32: " + ', '.join(f"{k} corr {agree[k]['corr']:.4f} max|Δ| {agree[k]['max_abs']:.3f}" for k in ('vtp', 'vtp_refined', 'vvp'))
          + f", equal box cells {100 * agree['boxes']['equal']:.1f}%")
    fp32_vs_ref = min(ratio('reference', f'batched {B}') for B in batches)
    fp32_vs_floor = max(ratio(f'batched {B}', f'floor {B}') for B in batches)
    fp32_vs_mha = max(ratio(f'batched {B}', f'mha floor {B}') for B in batches)
    print("\ngoals (issue 21):")
    print(f"  batched bf16 >= 3x the reference: {bf16_speedup:.2f}x -> {'met' if bf16_speedup >= 3 else 'NOT met'}")
    print(f"  batched fp32 >= 1.0x the reference at every batch: worst {fp32_vs_ref:.2f}x -> {'met' if fp32_vs_ref >= 1 else 'NOT met'}")
    print(f"  batched fp32 <= 1.05x the floor at every batch: worst {fp32_vs_floor:.3f}x -> {'met' if fp32_vs_floor <= 1.05 else 'NOT met'}"
          f" (against the floor of open_clip's own blocks, as the issue measured it: worst {fp32_vs_mha:.3f}x -> {'met' if fp32_vs_mha <= 1.05 else 'NOT met'})")
    return 0 if err < 1e-4 and boxes else 1


if __name__ == '__main__':
    sys.exit(main())
