"""Time per query of PI-CLIP's priors: the batched package code vs the slow per-image reference (tests/reference_priors.py).

    python benchmarks/priors.py                      # ViT-B/16 (random weights), 473×473, batch 8, 1-shot, CPU
    python benchmarks/priors.py --batch 2 --size 320 # quicker
    python benchmarks/priors.py --device cuda        # GPU (the reference runs on the same device)

Both compute VTP, PIR-refined VTP and VVP for the same episodes; the script checks the outputs agree
(max |Δ| < 1e-4, box masks identical) and prints the two timings side by side, with a third: the *floor*, three
bare no-grad ViT passes per query (the VTP input, the VVP query, the masked support), which any code computing
these priors must run. On a CPU both implementations sit near the floor (matrix products dominate), so the
batched code cannot be much faster there without changing the outputs; on a GPU the reference's per-image loops,
hooks and host copies dominate instead. Repeated queries and supports are where the evaluator's cache wins
(`benchmarks/caching.py`).
"""
import argparse, sys, time
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from reference_priors import ref_priors
from clipfss_nb.backbone import load_backbone
from clipfss_nb.priors import compute_priors
from clipfss_nb.vtp import vtp_input
from clipfss_nb.prompts import mask_image
from clipfss_nb.core import IMAGENET_MEAN, IMAGENET_STD, normalize


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=8); ap.add_argument('--size', type=int, default=473)
    ap.add_argument('--shots', type=int, default=1); ap.add_argument('--device', default='cpu')
    ap.add_argument('--backbone', default='ViT-B-16'); ap.add_argument('--threads', type=int, default=None)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bb = load_backbone(a.backbone, device=a.device, precision='fp32', interpolation='bilinear')
    B, K, S, dev = a.batch, a.shots, a.size, torch.device(a.device)
    g = torch.Generator().manual_seed(0)
    imgs = torch.nn.functional.interpolate(torch.rand(B * (K + 1), 3, 8, 8, generator=g), size=(S, S), mode='bicubic').clamp(0, 1)
    masks = torch.zeros(B * (K + 1), S, S, dtype=torch.uint8); masks[:, S // 4: 3 * S // 4, S // 5: 3 * S // 5] = 1
    q, s, m = imgs[:B], imgs[B:].reshape(B, K, 3, S, S), masks[B:].reshape(B, K, S, S)
    names = [f'class{i}' for i in range(B)]
    sync = (lambda: torch.cuda.synchronize()) if dev.type == 'cuda' else (lambda: None)
    print(f"{bb!r} on {dev} ({torch.get_num_threads()} threads) | {B} queries of {S}x{S}, {K}-shot")
    with torch.no_grad(): compute_priors(bb, q[:1].to(dev), s[:1].to(dev), m[:1].to(dev), names[:1])  # warm-up
    sync(); t0 = time.perf_counter()
    with torch.no_grad(): pr = compute_priors(bb, q.to(dev), s.to(dev), m.to(dev), names)
    sync(); fast = (time.perf_counter() - t0) / B
    sync(); t0 = time.perf_counter()
    with torch.no_grad():  # the floor: the three image passes, nothing else
        bb(vtp_input(bb, q.to(dev)), interpolation='bilinear')
        bb(normalize(q.to(dev), IMAGENET_MEAN, IMAGENET_STD), interpolation='bilinear')
        bb(mask_image(normalize(s.flatten(0, 1).to(dev), IMAGENET_MEAN, IMAGENET_STD), m.flatten(0, 1).to(dev)), interpolation='bilinear')
    sync(); floor = (time.perf_counter() - t0) / B
    L = bb.n_blocks
    sync(); t0 = time.perf_counter()
    refs = [ref_priors(bb, q[b].to(dev), list(s[b].to(dev)), list(m[b].to(dev)), names[b], blocks=(L - 1, L - 2)) for b in range(B)]
    sync(); slow = (time.perf_counter() - t0) / B
    err = max(float(np.abs(getattr(pr, k)[b].cpu().numpy() - refs[b][k]).max()) for b in range(B) for k in ('vtp', 'vtp_refined', 'vvp'))
    boxes = all((pr.boxes[b].cpu().numpy() == refs[b]['boxes']).all() for b in range(B))
    print(f"{'':24}{'s / query':>12}")
    print(f"{'reference (per image)':24}{slow:12.3f}")
    print(f"{'batched (package)':24}{fast:12.3f}")
    print(f"{'floor (3 bare passes)':24}{floor:12.3f}")
    print(f"speed-up {slow / fast:.2f}x (ceiling at the floor: {slow / floor:.2f}x; batched overhead above the floor {100 * (fast / floor - 1):.0f}%) | outputs equal: max |Δ| = {err:.1e} (< 1e-4: {err < 1e-4}), box masks identical: {boxes}")
    return 0 if err < 1e-4 and boxes else 1


if __name__ == '__main__':
    sys.exit(main())
