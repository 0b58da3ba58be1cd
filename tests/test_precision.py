"bf16 as a first-class precision: the 'auto' rule, bf16 priors against fp32 within stated tolerances on a ViT-B/16, and the two benchmark scripts end to end at a tiny size."
import subprocess, sys
from pathlib import Path
import pytest
import torch
import clipfss_nb.core as core
from clipfss_nb.core import compute_dtype, PRECISION_ENV
from clipfss_nb.backbone import load_backbone
from clipfss_nb.priors import compute_priors, compare_priors
from clipfss_nb.demo import shapeworld_episode

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('speedup, expected', [(3.2, torch.bfloat16), (1.5, torch.bfloat16), (1.2, torch.float32), (0.25, torch.float32)])
def test_auto_follows_the_measured_speedup(monkeypatch, speedup, expected):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setattr(core, 'cpu_bf16_speedup', lambda: speedup)
    assert compute_dtype('cpu') == expected
    assert compute_dtype('cpu', 'fp32') == torch.float32  # an explicit precision is never overridden
    monkeypatch.setenv(PRECISION_ENV, 'fp32')
    assert compute_dtype('cpu') == torch.float32  # the pin wins over the measurement
    monkeypatch.setenv(PRECISION_ENV, 'half')
    with pytest.raises(ValueError, match=PRECISION_ENV): compute_dtype('cpu')


def test_load_backbone_auto_uses_the_rule(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setattr(core, 'cpu_bf16_speedup', lambda: 3.0)
    bb = load_backbone('miniclip-shapeworld', device='cpu')
    assert (bb.precision, bb.dtype) == ('bf16', torch.bfloat16)
    ln = bb.visual.transformer.resblocks[0].ln_1
    assert ln.weight.dtype == torch.float32  # LayerNorm stays fp32


def _episodes(size, n):
    eps = [shapeworld_episode(fold=i % 4, index=i // 4, size=size) for i in range(n)]
    stack = lambda key: torch.stack([torch.as_tensor(e[key]) for e in eps])
    return (stack('query').permute(0, 3, 1, 2).float().div(255), stack('support').permute(0, 3, 1, 2).float().div(255)[:, None],
            stack('support_mask')[:, None], [e['class_name'] for e in eps])


def test_bf16_priors_of_a_vit_b16_agree_with_fp32():
    "Random ViT-B/16 weights (the arithmetic is under test, not what the model learnt), 224 px, four episodes."
    torch.manual_seed(0)
    vit = {p: load_backbone('ViT-B-16', precision=p, interpolation='bilinear') for p in ('fp32', 'bf16')}
    vit['bf16'].clip.load_state_dict(vit['fp32'].clip.state_dict())
    q, s, m, names = _episodes(224, 4)
    p32, p16 = [compute_priors(vit[p], q, s, m, names) for p in ('fp32', 'bf16')]
    assert all(t.dtype == torch.float32 for t in (p16.vtp, p16.vtp_refined, p16.vvp))
    agree = compare_priors(p32, p16)
    assert agree['vvp']['corr'] > 0.999 and agree['vvp']['max_abs'] < 0.05, agree
    assert agree['vtp_refined']['corr'] > 0.98, agree
    assert agree['boxes']['equal'] > 0.9, agree


def _run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / 'benchmarks' / script), *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_priors_benchmark_runs_and_checks_its_outputs():
    r = _run('priors.py', '--size', '64', '--batches', '1,2', '--rounds', '1')
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ('reference fp32 (per image)', 'batched fp32', 'floor fp32 (3 fused passes)', 'mha floor fp32', 'batched bf16', 'box masks identical: True',
                 'batched bf16 >= 3x the reference', 'flags:'):
        assert line in r.stdout, (line, r.stdout)


def test_backbone_benchmark_prints_fractions_of_the_matmul_rate():
    r = _run('backbone.py', '--sizes', '224,64', '--batch', '1', '--repeats', '1')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('DenseCLIP dense forward') == 4 and r.stdout.count('open_clip encode_image') == 2 and r.stdout.count('of the measured matmul rate in both precisions') == 2, r.stdout
