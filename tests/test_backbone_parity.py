"""Parity of `DenseCLIP` with open_clip itself on random ViT-B/16 weights (all within 1e-5)."""
import os
import subprocess
import sys
import pytest
import torch
import torch.nn.functional as F
import open_clip
from clipfss_nb.backbone import DenseCLIP
from clipfss_nb.core import CLIP_MEAN, CLIP_STD

TOL = 1e-5


@pytest.fixture(scope='module')
def vit():
    torch.manual_seed(0)
    clip = open_clip.create_model('ViT-B-16', pretrained=None, force_quick_gelu=True).eval()
    return DenseCLIP(clip, open_clip.get_tokenizer('ViT-B-16'), CLIP_MEAN, CLIP_STD)


@pytest.fixture(scope='module')
def pixels(vit):
    return vit.preprocess(torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1)))


def test_pooled_equals_encode_image(vit, pixels):
    with torch.no_grad():
        ours, ref = vit(pixels).image_embed, vit.clip.encode_image(pixels)
    assert (ours - ref).abs().max() < TOL


def test_block_tokens_equal_open_clip_intermediates(vit, pixels):
    idx = [0, 3, 6, 9, 11]
    with torch.no_grad():
        ours = vit(pixels, blocks=idx, attn_blocks=(3, 11))  # some blocks through the hand-written path
        ref = vit.visual.forward_intermediates(pixels, indices=idx, intermediates_only=True, output_extra_tokens=True)
    for j, i in enumerate(idx):
        assert (ours.patch_grid(i) - ref['image_intermediates'][j]).abs().max() < TOL, i
        assert (ours.tokens[i][:, :1] - ref['image_intermediates_prefix'][j]).abs().max() < TOL, i


def test_attention_equals_direct_softmax(vit, pixels):
    with torch.no_grad():
        out = vit(pixels, blocks=(4,), attn_blocks=(5,), per_head=True)
        block = vit.visual.transformer.resblocks[5]
        z = block.ln_1(out.tokens[4])  # input of block 5 = output of block 4
        C, h = z.shape[-1], block.attn.num_heads
        q, k, _ = F.linear(z, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)
        q = q.reshape(*q.shape[:2], h, C // h).transpose(1, 2)
        k = k.reshape(*k.shape[:2], h, C // h).transpose(1, 2)
        direct = torch.softmax(q @ k.transpose(-2, -1) / (C // h) ** 0.5, dim=-1)  # (B, heads, L, L)
        _, mha = block.attn(z, z, z, need_weights=True, average_attn_weights=True)
    assert (out.attentions[5] - direct).abs().max() < TOL
    assert (out.attentions[5].mean(1) - mha).abs().max() < TOL


def test_text_equals_encode_text(vit):
    texts = ['a photo of a cat.', 'a photo without a dog.']
    with torch.no_grad():
        ref = F.normalize(vit.clip.encode_text(vit.tokenizer(texts)), dim=-1)
    assert (vit.encode_text(texts) - ref).abs().max() < TOL
    assert (vit.encode_class_names(['cat']) - ref[:1]).abs().max() < TOL


def test_interpolation_identity_at_native_grid(vit):
    table = vit.visual.positional_embedding
    for mode in ('bicubic', 'bilinear'):
        assert vit.pos_embed((14, 14), mode) is table
        rows = table[1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
        same = F.interpolate(rows, size=(14, 14), mode=mode, align_corners=False)
        assert (same - rows).abs().max() < TOL


def test_any_size_and_bilinear_vs_bicubic(vit):
    x = vit.preprocess(torch.rand(1, 3, 473, 473))
    with torch.no_grad():
        a = vit(x, interpolation='bilinear')
        b = vit(x, interpolation='bicubic')
    assert a.grid == (29, 29) and a.patch_embeds.shape == (1, 841, 512)
    assert (a.image_embed - b.image_embed).abs().max() > 0  # the two modes really differ


def _run(code, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)


def test_offline_missing_weights_gives_clear_error(tmp_path):
    code = ("from clipfss_nb.backbone import load_backbone, WeightsNotFoundError\n"
            "try:\n    load_backbone('ViT-B-16', pretrained='openai')\n"
            "except WeightsNotFoundError as e:\n    print('MSG', e)\n")
    res = _run(code, {'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf'), 'CLIPFSS_WEIGHTS_DIR': ''})
    assert res.returncode == 0, res.stderr
    assert 'MSG weights for ViT-B-16' in res.stdout
    for hint in ('timm/vit_base_patch16_clip_224.openai', 'checkpoint=', 'CLIPFSS_WEIGHTS_DIR', 'ViT-B-16.pt'):
        assert hint in res.stdout, hint


def test_weights_dir_env_is_used(tmp_path):
    torch.manual_seed(0)
    clip = open_clip.create_model('ViT-B-16', pretrained=None, force_quick_gelu=True)
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(tmp_path / 'ViT-B-16-openai.safetensors'))
    code = ("from clipfss_nb.backbone import load_backbone\n"
            "b = load_backbone('ViT-B-16', pretrained='openai', device='cpu')\n"
            "print(b.name, len(b.weights_hash), type(b.visual.transformer.resblocks[0].mlp.gelu).__name__)\n")
    res = _run(code, {'HF_HUB_OFFLINE': '1', 'HF_HOME': str(tmp_path / 'hf'), 'CLIPFSS_WEIGHTS_DIR': str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ['ViT-B-16/openai', '64', 'QuickGELU']


def _script(name):
    "A console script of this environment (CI runs the venv's python without activating it)."
    from pathlib import Path
    return str(Path(sys.executable).parent / name)


def test_clipfss_info_cli(tmp_path):
    from clipfss_nb.testing import write_tiny_checkpoints
    files = write_tiny_checkpoints(tmp_path)
    res = subprocess.run([_script('clipfss-info'), '--backbone', str(files['bundle']), '--size', '64', '--device', 'cpu'],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert 'dense forward at 64x64 (grid (4, 4)' in res.stdout
    bad = subprocess.run([_script('clipfss-info'), '--backbone', str(tmp_path / 'missing.pt')], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and 'checkpoint file not found' in bad.stderr
