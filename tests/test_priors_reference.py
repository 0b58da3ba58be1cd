"""`PriorConfig.reference()` through the public API (`compute_priors`) against the low-level reference path written from
the spec (`tests/reference_priors.py::ref_vtp_official`: uint8 truncation, PIL/torchvision bicubic to
16⌈H_o/16⌉ × 16⌈W_o/16⌉ of the ORIGINAL size, map at (H_o, W_o), bilinear align_corners=True to 60×60), on random
ViT-B/16 weights, from a 473×473 query of original sizes 375×500 and 500×333."""
import sys
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
from reference_priors import ref_vtp_official
from clipfss_nb.backbone import load_backbone
from clipfss_nb.priors import PriorConfig, PriorMethod, compute_priors

TOL = 1e-5


@pytest.fixture(scope='module')
def vit():
    torch.manual_seed(0)
    bb = load_backbone('ViT-B-16', device='cpu', interpolation='bilinear')
    # open_clip's random init attends almost uniformly, so PIR's refined map is nearly constant before its min–max,
    # which magnifies fp32 rounding ~20×; queries and keys ×3 give trained-like, peaked attention
    with torch.no_grad():
        for blk in bb.visual.transformer.resblocks: blk.attn.in_proj_weight[:2 * bb.width] *= 3
    return bb


def query_473(original_size, seed):
    "A smooth random uint8 image of the original size, resized to 473×473 like PI-CLIP's loader (bilinear) → [0,1]."
    g = torch.Generator().manual_seed(seed)
    img = F.interpolate(torch.rand(1, 3, 5, 7, generator=g), size=original_size, mode='bicubic').clamp(0, 1)
    img = (img * 255).round() / 255  # a real image is uint8
    return F.interpolate(img, size=(473, 473), mode='bilinear', align_corners=False)[0].clamp(0, 1)


@pytest.mark.parametrize('original_size', [(375, 500), (500, 333)])
def test_reference_preset_equals_reference_path(vit, original_size):
    q = query_473(original_size, seed=sum(original_size))
    labels, target = ['dog', 'person', 'cat'], 'cat'
    s = torch.zeros(1, 1, 3, 473, 473); m = torch.zeros(1, 1, 473, 473, dtype=torch.uint8)  # VVP not under test here
    with torch.no_grad():
        pr = compute_priors(vit, q[None], s, m, [target], size=(60, 60), cfg=PriorConfig.reference(vvp_blocks=(-1,)),
                            labels=[labels], original_size=original_size)
    r = ref_vtp_official(vit, q, original_size, target, labels)
    grid = (-(-original_size[0] // 16), -(-original_size[1] // 16))
    assert tuple(pr.cam.shape[-2:]) == grid and pr.vtp.shape == (1, 1, 60, 60)
    assert (pr.boxes[0].numpy() == r['boxes']).all(), 'box masks differ'
    errs = {k: float(np.abs(getattr(pr, k)[0].numpy() - r[k]).max()) for k in ('vtp', 'vtp_refined')}
    errs['cam'] = float(np.abs(pr.cam[0].numpy() - r['cam']).max())
    print(original_size, {k: f'{v:.1e}' for k, v in errs.items()})
    assert all(v < TOL for v in errs.values()), errs
    # the package's default recipe (torch bicubic on floats, grid of the 473 query) is measurably different
    with torch.no_grad():
        dflt = compute_priors(vit, q[None], s, m, [target], size=(60, 60), cfg=PriorConfig(vtp_mode='labels', vvp_blocks=(-1,)), labels=[labels])
    assert tuple(dflt.cam.shape[-2:]) == (30, 30)
    assert float(np.abs(dflt.vtp_refined[0].numpy() - r['vtp_refined']).max()) > 100 * TOL


def test_reference_preset_evaluator_method_and_vvp(vit):
    "The evaluator adapter with the preset gives the public path's maps and refuses to run without the query info."
    q = query_473((375, 500), seed=1)
    sup = query_473((333, 500), seed=2)
    mask = torch.zeros(473, 473, dtype=torch.uint8); mask[100:300, 120:380] = 1; mask[98:100] = 255
    cfg = PriorConfig.reference()
    info = [dict(original_size=(375, 500), labels=['cat', 'dog'])]
    with torch.no_grad():
        pr = compute_priors(vit, q[None], sup[None, None], mask[None, None], ['cat'], size=(60, 60), cfg=cfg,
                            labels=[info[0]['labels']], original_size=[(375, 500)])
        meth = PriorMethod('vtp+pir', backbone=vit, cfg=cfg)
        assert meth.uses_query_info
        prob = meth.predict(q[None], sup[None, None], mask[None, None], ['cat'], query_info=info)
        with pytest.raises(ValueError, match='query_info'): meth.predict(q[None], sup[None, None], mask[None, None], ['cat'])
    full = compute_priors(vit, q[None], sup[None, None], mask[None, None], ['cat'], size=(473, 473), cfg=cfg,
                          labels=[info[0]['labels']], original_size=[(375, 500)], vtp=(pr.cam, pr.cam_refined, pr.boxes))
    assert float((prob - full.vtp_refined[:, 0]).abs().max()) < TOL
    assert pr.vvp.shape == (1, 2, 60, 60)  # the VVP itself is the default recipe's (tests/test_priors_parity.py at 473)
