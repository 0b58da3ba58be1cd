"""CLIPSeg inference speed: clipfss_nb vs transformers on CPU, one 352×352 image, 1 and 8 text prompts.

Both models carry the same random ViT-B/16-sized weights (transformers builds `CLIPSegForImageSegmentation` from a
config, saves it, and ours loads the saved files). transformers needs one copy of the image per prompt; ours encodes
the image once (and only up to the deepest read-out block) and runs the small decoder per prompt.

    python benchmarks/clipseg.py [--threads 1] [--repeats 7] [--refined]
"""
import argparse, statistics, tempfile, time
import torch


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1: stable numbers on a shared machine)')
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--refined', action='store_true', help='refined head (rd64-refined) instead of the plain one')
    ap.add_argument('--prompts', type=int, nargs='+', default=[1, 8])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import open_clip, transformers
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation
    from clipfss_nb.clipseg_weights import load_clipseg
    torch.manual_seed(0)
    cfg = CLIPSegConfig(vision_config=dict(patch_size=16, image_size=224), text_config=dict(eos_token_id=2),
                        use_complex_transposed_convolution=args.refined)
    hf = CLIPSegForImageSegmentation(cfg).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_clipseg(d, device='cpu')
    tok = open_clip.get_tokenizer('ViT-B-16')
    words = ['a cat', 'a remote control', 'a blanket', 'a dog', 'a sofa', 'a person', 'a bottle', 'a chair']
    pix = torch.randn(1, 3, 352, 352)
    print(f"CLIPSeg ViT-B/16 rd64 ({'refined' if args.refined else 'plain'} head), random weights, 352×352, CPU, "
          f"{args.threads} thread(s), median of {args.repeats} | torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'prompts':>7} | {'transformers (ms)':>17} | {'clipfss_nb (ms)':>15} | {'ours / theirs':>13} | {'speed-up':>8} | max |Δlogit|")
    rows = []
    for k in args.prompts:
        texts = (words * (k // len(words) + 1))[:k]
        ids = tok(texts)
        def theirs(): return hf(input_ids=ids, pixel_values=pix.expand(k, -1, -1, -1)).logits
        def mine(): return ours(pix, ours.text_embedding(texts))[:, 0]
        with torch.inference_mode():
            diff = (theirs() - mine()).abs().max().item()
            t_hf, t_us = median_time(theirs, args.repeats), median_time(mine, args.repeats)
        rows.append((k, t_hf, t_us))
        print(f"{k:>7} | {1000 * t_hf:>17.1f} | {1000 * t_us:>15.1f} | {t_us / t_hf:>12.3f}× | {t_hf / t_us:>7.2f}× | {diff:.1e}")
    goals = {1: ('ours/theirs ≤ 1.05', lambda h, u: u / h <= 1.05), 8: ('speed-up ≥ 4', lambda h, u: h / u >= 4)}
    for k, h, u in rows:
        if k in goals: print(f"goal for {k} prompt(s): {goals[k][0]}: {'met' if goals[k][1](h, u) else 'NOT met'}")


if __name__ == '__main__':
    main()
