"""The fast batched priors (`clipfss_nb.priors`) against the slow per-image reference written from the spec
(`tests/reference_priors.py`): maps within 1e-4 (fp32), box masks identical."""
import sys
from pathlib import Path
import numpy as np
import pytest
import torch
sys.path.insert(0, str(Path(__file__).parent))
from reference_priors import ref_priors
from clipfss_nb.backbone import load_backbone, list_bundles
from clipfss_nb.priors import compute_priors

TOL = 1e-4


def blobs(n, h, w, seed):
    "Smooth random images (so that CAMs have structure) and rectangular support masks with an ignore band."
    g = torch.Generator().manual_seed(seed)
    imgs = torch.nn.functional.interpolate(torch.rand(n, 3, 6, 8, generator=g), size=(h, w), mode='bicubic').clamp(0, 1)
    masks = torch.zeros(n, h, w, dtype=torch.uint8)
    for i in range(n):
        y, x = int(torch.randint(0, h // 2, (1,), generator=g)), int(torch.randint(0, w // 2, (1,), generator=g))
        masks[i, y:y + h // 3, x:x + w // 3] = 1
        masks[i, y:y + 2, x:x + w // 3] = 255
    return imgs, masks


def check(bb, H, W, B=2, K=1, size=None, blocks=None):
    imgs, masks = blobs(B * (K + 1), H, W, seed=H + W)
    q, s, m = imgs[:B], imgs[B:].reshape(B, K, 3, H, W), masks[B:].reshape(B, K, H, W)
    names = ['cat', 'dog', 'car', 'bird'][:B]
    with torch.no_grad():
        pr = compute_priors(bb, q, s, m, names, size=size)
    L = bb.n_blocks
    errs = {}
    for b in range(B):
        r = ref_priors(bb, q[b], list(s[b]), list(m[b]), names[b], size=size, blocks=(L - 1, L - 2))
        assert (pr.boxes[b].numpy() == r['boxes']).all(), 'box masks differ'
        for k in ('vtp', 'vtp_refined', 'vvp'):
            errs[k] = max(errs.get(k, 0), float(np.abs(getattr(pr, k)[b].numpy() - r[k]).max()))
        errs['cam'] = max(errs.get('cam', 0), float(np.abs(pr.cam[b].numpy() - r['cam']).max()))
    print(bb.name, (H, W), {k: f'{v:.2e}' for k, v in errs.items()})
    assert all(v < TOL for v in errs.values()), errs
    return errs


@pytest.fixture(scope='module')
def vit():
    torch.manual_seed(0)
    return load_backbone('ViT-B-16', device='cpu', interpolation='bilinear')


def test_parity_vit_b16_pascal_size(vit):
    check(vit, 320, 480, B=2, K=1)


def test_parity_vit_b16_473_two_shot(vit):
    check(vit, 473, 473, B=1, K=2, size=(60, 60))  # VTP at 480 (30×30), VVP at 29×29, both resized to 60×60


@pytest.mark.skipif('miniclip-shapeworld' not in list_bundles(), reason='MiniCLIP bundle not installed')
def test_parity_miniclip():
    bb = load_backbone('miniclip-shapeworld', device='cpu', interpolation='bilinear')
    check(bb, 128, 128, B=3, K=1)
    check(bb, 128, 96, B=2, K=3, size=(60, 60))
