"""Dense ViT-B/16 forward cost on this machine (random weights), side by side with open_clip's encode_image.

Usage: python benchmarks/backbone.py [--device cpu] [--repeats 5]
Prints median wall time per forward and ratios measured in the same run.
"""
import argparse, statistics, time
import torch
import open_clip
from clipfss_nb.backbone import DenseCLIP
from clipfss_nb.core import CLIP_MEAN, CLIP_STD


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    args = parser.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clip = open_clip.create_model('ViT-B-16', pretrained=None, force_quick_gelu=True).eval().to(args.device)
    vit = DenseCLIP(clip, open_clip.get_tokenizer('ViT-B-16'), CLIP_MEAN, CLIP_STD)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, batch 1, fp32, median of {args.repeats}")
    rows = []
    with torch.inference_mode():
        x224 = vit.preprocess(torch.rand(1, 3, 224, 224))
        base = median_ms(lambda: (clip.encode_image(x224), sync()), args.repeats)
        rows.append(('open_clip encode_image 224', base))
        for size in (224, 473):
            x = vit.preprocess(torch.rand(1, 3, size, size))
            rows.append((f'DenseCLIP {size} (pooled + patch embeds)', median_ms(lambda: (vit(x), sync()), args.repeats)))
            rows.append((f'DenseCLIP {size} (+ all block tokens, attention of last 8)',
                         median_ms(lambda: (vit(x, blocks=range(12), attn_blocks=range(4, 12)), sync()), args.repeats)))
    print(f"{'forward':58s} {'ms':>8s} {'x encode_image@224':>20s}")
    for name, ms in rows: print(f"{name:58s} {ms:8.1f} {ms / base:20.2f}")


if __name__ == '__main__':
    main()
