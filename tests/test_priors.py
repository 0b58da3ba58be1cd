"""Unit tests of the PI-CLIP priors: boxes vs brute force, PIR behaviour, degenerate maps, K-shot shapes, modes, the
evaluator adapter and the `clipfss-demo` command end to end."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
sys.path.insert(0, str(Path(__file__).parent))
from reference_priors import brute_boxes, ref_boxes, ref_pir
from clipfss_nb.pir import box_mask, refine, connected_components
from clipfss_nb.core import minmax
from clipfss_nb.vtp import visual_text_prior, VTP_MODES
from clipfss_nb.vvp import visual_visual_prior, DENSE_MODES
from clipfss_nb.priors import compute_priors, PRIOR_KINDS, PriorMethod, shipped_threshold
from clipfss_nb.testing import tiny_backbone, random_images, write_tiny_checkpoints
from clipfss_nb.backbone import list_bundles


@pytest.mark.parametrize('h,w', [(8, 8), (13, 21), (30, 30), (24, 32)])
def test_box_mask_equals_brute_force(h, w):
    g = torch.Generator().manual_seed(h * w)
    for coarse in (2, 4, 7):  # from big blobs to many small components
        cams = minmax(F.interpolate(torch.rand(40, 1, coarse, coarse, generator=g), size=(h, w), mode='bicubic')[:, 0])
        fast = box_mask(cams).numpy()
        for c, f in zip(cams.numpy(), fast):
            assert (f == brute_boxes(c)).all()
            assert (f == ref_boxes(c)).all()


def test_box_mask_thresholds_and_edges():
    cam = torch.zeros(1, 6, 6); cam[0, 1:3, 1:3] = 1.0; cam[0, 4, 4] = 0.5  # two components, one tiny
    b = box_mask(cam)[0]
    assert b[1:3, 1:3].all() and b[4, 4] and b.sum() == 5
    spiral = np.zeros((9, 9), bool)  # a long snake: propagation must run to convergence
    spiral[0, :] = spiral[:, 8] = spiral[8, :] = spiral[2:, 0] = spiral[2, :7] = spiral[2:7, 6] = spiral[6, 2:7] = True
    lab = connected_components(torch.from_numpy(spiral)[None])[0]
    assert len(torch.unique(lab[lab > 0])) == 1


def test_pir_matches_reference_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    h, w = 10, 12
    attn = torch.rand(3, h * w, h * w, generator=g) ** 4
    cam = minmax(F.interpolate(torch.rand(3, 1, 3, 4, generator=g), size=(h, w), mode='bicubic')[:, 0])
    out, boxes = refine(cam, attn, return_boxes=True)
    for b in range(3):
        A = np.pad(attn[b].double().numpy(), ((1, 0), (1, 0)), constant_values=1.0)
        r, rb = ref_pir(cam[b].double().numpy(), [A], n_layers=1)
        assert np.abs(out[b].numpy() - r).max() < 1e-5 and (boxes[b].numpy() == rb).all()


def test_pir_sharpens_block_structure():
    h = w = 6; N = h * w
    blk = torch.zeros(h, w, dtype=torch.bool); blk[1:4, 1:4] = True; blk = blk.flatten()
    att = torch.full((N, N), 0.02); att[blk[:, None] & blk[None]] = 1.0
    g = torch.Generator().manual_seed(3)
    cam = torch.rand(1, N, generator=g) * 0.6; cam[0, blk] += 0.4
    cam = minmax(cam.reshape(1, h, w))
    frac = lambda m: float(m.flatten()[blk].sum() / m.sum())
    assert frac(refine(cam, att[None])) > max(frac(cam), 0.9)


@pytest.mark.parametrize('value', [0.0, 1.0, 0.3])
def test_degenerate_maps_give_no_nan(value):
    cam = torch.full((2, 5, 7), value)
    attn = torch.rand(2, 35, 35)
    out = refine(cam, attn)
    assert not out.isnan().any() and (out >= 0).all() and (out <= 1).all()
    assert not minmax(torch.zeros(1, 4, 4)).isnan().any()


@pytest.fixture(scope='module')
def tiny():
    return tiny_backbone(interpolation='bilinear')


@pytest.mark.parametrize('K', [1, 3, 5])
def test_k_shot_shapes(tiny, K):
    q, s = random_images(2, 64, 80), random_images(2 * K, 64, 80, seed=1).reshape(2, K, 3, 64, 80)
    m = torch.zeros(2, K, 64, 80, dtype=torch.uint8); m[..., 8:40, 16:60] = 1
    assert visual_visual_prior(tiny, q, s, m).shape == (2, 2 * K, 4, 5)
    assert visual_visual_prior(tiny, q, s, m, shots='mean').shape == (2, 2, 4, 5)
    for mode in DENSE_MODES: assert visual_visual_prior(tiny, q, s, m, dense_mode=mode).shape == (2, 2 * K, 4, 5)
    pr = compute_priors(tiny, q, s, m, ['cat', 'dog'], size=(60, 60))
    assert pr.vvp.shape == (2, 2 * K, 60, 60) and pr.vtp.shape == pr.vtp_refined.shape == (2, 1, 60, 60)


def test_vtp_modes_and_batching(tiny):
    imgs = random_images(3, 64, 64)
    vocab = ['cat', 'dog', 'car', 'bird']
    labels = [['cat', 'person'], ['dog'], ['car', 'cat', 'sheep']]
    for mode in VTP_MODES:
        out = visual_text_prior(tiny, imgs, ['cat', 'dog', 'car'], mode, vocab, labels)
        one = visual_text_prior(tiny, imgs[2:], ['car'], mode, vocab, labels[2:])
        assert (out.cam[2] - one.cam[0]).abs().max() < 1e-4  # batched matmuls round differently from one image
        assert not out.cam.isnan().any()


def test_adapter_cache_and_kinds(tiny):
    q, s = random_images(2, 64, 64), random_images(2, 64, 64, seed=1)[:, None]
    m = torch.zeros(2, 1, 64, 64, dtype=torch.uint8); m[..., 10:50, 10:50] = 1
    for kind in PRIOR_KINDS:
        meth = PriorMethod(kind, backbone=tiny)
        feats = [meth.image_features(x) for x in q]
        a = meth.predict(q, s, m, ['cat', 'dog'], query_feats=feats)
        b = meth.predict(q, s, m, ['cat', 'dog'])
        assert a.shape == (2, 64, 64) and (a - b).abs().max() < 1e-5


def run_cli(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([str(Path(sys.executable).parent / 'clipfss-demo'), *args],
                          capture_output=True, text=True, env=e, timeout=300)


@pytest.mark.skipif('miniclip-shapeworld' not in list_bundles(), reason='MiniCLIP bundle not installed')
def test_demo_cli_on_bundle(tmp_path):
    out = tmp_path / 'demo.png'
    r = run_cli('--out', str(out), '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    assert 'IoU' in r.stdout and out.stat().st_size > 1000
    assert list(tmp_path.iterdir()) == [out]  # atomic: no temporary left behind
    t = shipped_threshold('vvp+vtp', 0)
    assert t is not None and 0 < t < 1, 'the MiniCLIP bundle ships thresholds chosen on base classes (prior_table.json)'
    assert f'at threshold {t:.2f} (chosen on the base classes of fold 0)' in r.stdout, r.stdout
    r = run_cli('--out', str(out), '--device', 'cpu', '--threshold', '0.9')
    assert r.returncode == 0 and 'at threshold 0.90 (given)' in r.stdout, r.stdout


def test_demo_cli_own_images(tmp_path):
    paths = write_tiny_checkpoints(tmp_path / 'ck')
    g = np.random.default_rng(0)
    for name in ('q', 's'): Image.fromarray(g.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(tmp_path / f'{name}.png')
    mask = np.zeros((70, 90), np.uint8); mask[10:50, 20:70] = 255
    Image.fromarray(mask).save(tmp_path / 'sm.png'); Image.fromarray(mask).save(tmp_path / 'qm.png')
    out = tmp_path / 'own.png'
    r = run_cli('--backbone', str(paths['bundle']), '--query', str(tmp_path / 'q.png'), '--support', str(tmp_path / 's.png'),
                '--support-mask', str(tmp_path / 'sm.png'), '--query-mask', str(tmp_path / 'qm.png'), '--class-name', 'cat',
                '--size', '64', '--out', str(out), '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    assert "one-shot 'cat', IoU" in r.stdout and 'at threshold 0.50 (default)' in r.stdout and out.is_file()
    r = run_cli('--query', str(tmp_path / 'q.png'), '--out', str(out))
    assert r.returncode != 0 and 'need all of' in r.stderr and 'Traceback' not in r.stderr


def test_demo_cli_missing_weights_message(tmp_path):
    r = run_cli('--backbone', 'ViT-B-16', '--pretrained', 'openai', '--out', str(tmp_path / 'x.png'),
                env={'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf'), 'CLIPFSS_WEIGHTS_DIR': str(tmp_path)})
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert 'checkpoint=' in r.stderr and 'not cached locally' in r.stderr
