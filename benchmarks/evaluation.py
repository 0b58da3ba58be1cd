"""Evaluation throughput on 1 and 2 processes, side by side in one run, with a check that the metrics are identical.

    .venv/bin/python benchmarks/evaluation.py [--episodes 200] [--method piclip-vvp-vtp] [--threads 1] [--processes 2]

Writes a small ShapeWorld-5i validation split, then runs `clipfss-eval` (fold 0, 1-shot, HSNet protocol at 128 px,
the shipped MiniCLIP for the piclip-* methods) once plainly and once with `--processes N` (`accelerate launch`, gloo on
CPUs, NCCL on GPUs). Prints episodes/s of each from the evaluation time recorded in the results JSON (start-up and
imports excluded; for N processes the slowest shard), the wall time of each command, the speed-up, and whether the
metric fields (mIoU, FB-IoU, per-class, baselines) of the two JSONs are byte-identical. Each process uses `--threads`
torch threads, so N processes use N times as many cores: on a machine with fewer free cores the speed-up shrinks.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
from clipfss_nb.shapeworld import write_shapeworld

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--episodes', type=int, default=200)
p.add_argument('--method', default='piclip-vvp-vtp')
p.add_argument('--threads', type=int, default=1)
p.add_argument('--processes', type=int, default=2)
p.add_argument('--device', default='cpu')
args = p.parse_args()
exe = shutil.which('clipfss-eval') or str(Path(sys.executable).parent / 'clipfss-eval')
env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), **({'CUDA_VISIBLE_DEVICES': ''} if args.device == 'cpu' else {}))

with tempfile.TemporaryDirectory() as d:
    write_shapeworld(Path(d) / 'sw', n_train=0, n_val=200, size=128)
    common = ['--root', f'{d}/sw', '--fold', '0', '--episodes', str(args.episodes), '--method', args.method, '--img-size', '128',
              '--threads', str(args.threads), '--quiet'] + (['--device', 'cpu'] if args.device == 'cpu' else [])
    runs = {}
    for n in (1, args.processes):
        out = f'{d}/r{n}.json'
        t0 = time.perf_counter()
        subprocess.run([exe, *common, '--out', out, *(['--processes', str(n)] if n > 1 else [])], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        res = json.loads(Path(out).read_text())
        runs[n] = dict(res=res, wall=wall, eps=args.episodes / res['timing']['seconds'])
    one, many = runs[1], runs[args.processes]
    same = all(json.dumps(one['res'][k]) == json.dumps(many['res'][k]) for k in ('results', 'baselines'))
    print(f"{args.method}, ShapeWorld-5i fold 0, 1-shot, {args.episodes} episodes at 128 px, {args.threads} thread(s) per process, {args.device}")
    for n, r in runs.items():
        print(f"  {n} process{'es' if n > 1 else '  '}: {r['eps']:7.1f} episodes/s  (evaluation {r['res']['timing']['seconds']:.1f} s, "
              f"command {r['wall']:.1f} s with start-up)  mIoU {r['res']['results']['miou']:.2f}")
    print(f"  speed-up: {many['eps'] / one['eps']:.2f}x on the evaluation; metric fields identical: {same}")
