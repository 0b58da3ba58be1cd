"""Parity of `clipfss_nb.clipseg.CLIPSeg` with transformers' `CLIPSegForImageSegmentation` (random weights, within 1e-4).

transformers is a dev dependency: it only builds and saves the reference model here; our loader reads the saved files.
"""
import pytest
import torch
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip('transformers')
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation
from clipfss_nb.clipseg_weights import load_clipseg, split_hf_clipseg, hf_clipseg_files, save_clipseg
from clipfss_nb.backbone import WeightsNotFoundError

TOL = 1e-4
VOCAB, CTX = 100, 16


def small_config(refined: bool, extract_layers=(0, 2, 3)) -> CLIPSegConfig:
    return CLIPSegConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=VOCAB,
                         max_position_embeddings=CTX, eos_token_id=2, bos_token_id=1, pad_token_id=0),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4, patch_size=16, image_size=64),
        projection_dim=24, reduce_dim=16, decoder_intermediate_size=32, decoder_num_attention_heads=4,
        extract_layers=list(extract_layers), use_complex_transposed_convolution=refined)


def randomise(model, seed=0):
    "Random values in every parameter (HF zero/one-initialises biases and LayerNorms, which would hide mapping bugs)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 0.02 if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if 'norm' in name and name.endswith('weight') else 0.0))
    return model.eval()


def token_ids(n, seed=0):
    "Random token rows: ids in [3, VOCAB-2], EOT (= VOCAB-1, the max id) at a random position, zero padding after."
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB - 1, (n, CTX), generator=g)
    for i in range(n):
        end = int(torch.randint(3, CTX, (1,), generator=g))
        ids[i, end] = VOCAB - 1; ids[i, end + 1:] = 0
    return ids


@pytest.fixture(scope='module', params=[False, True], ids=['plain', 'refined'])
def pair(request, tmp_path_factory):
    hf = randomise(CLIPSegForImageSegmentation(small_config(request.param)), seed=int(request.param))
    folder = tmp_path_factory.mktemp('hf')
    hf.save_pretrained(folder)
    ids = token_ids(3)
    table = {f'p{i}': ids[i] for i in range(3)}
    ours = load_clipseg(folder, tokenizer=lambda texts: torch.stack([table[t] for t in texts]))
    return hf, ours, ids, folder


@pytest.mark.parametrize('size', [352, 224, 64])
def test_text_conditioning(pair, size):
    hf, ours, ids, _ = pair
    pix = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        ref = hf(input_ids=ids, pixel_values=pix.expand(3, -1, -1, -1), interpolate_pos_encoding=True)
        cond = ours.text_embedding(['p0', 'p1', 'p2'])
        got = ours(pix, cond)  # one image encoding, three prompts
    assert (cond - ref.conditional_embeddings).abs().max() < TOL
    assert got.shape == (3, 1, size, size)
    assert (got[:, 0] - ref.logits).abs().max() < TOL
    assert (ours.backbone(pix).image_embed - ref.pooled_output[:1]).abs().max() < TOL


@pytest.mark.parametrize('size', [352, 224])
def test_visual_conditioning(pair, size):
    hf, ours, _, _ = pair
    g = torch.Generator().manual_seed(7)
    pix, cpix = torch.randn(2, 3, size, size, generator=g), torch.randn(2, 3, 352, 352, generator=g)
    with torch.no_grad():
        ref = hf(pixel_values=pix, conditional_pixel_values=cpix, interpolate_pos_encoding=True)
        cond = ours.visual_embedding(cpix, normalized=True)  # no prompt engineering: HF does none
        got = ours(pix, cond)
    assert (cond - ref.conditional_embeddings).abs().max() < TOL
    assert (got[:, 0] - ref.logits).abs().max() < TOL


def test_given_conditional_and_many_prompts(pair):
    hf, ours, _, _ = pair
    g = torch.Generator().manual_seed(3)
    pix, cond = torch.randn(2, 3, 352, 352, generator=g), torch.randn(6, 24, generator=g)
    idx = torch.tensor([0, 0, 0, 1, 1, 1])
    with torch.no_grad():
        ref = hf(pixel_values=pix[idx], conditional_embeddings=cond).logits
        got = ours(pix, cond, image_index=idx)[:, 0]
    assert (got - ref).abs().max() < TOL


def test_original_pth_and_prefix_synonym(pair, tmp_path):
    hf, ours, ids, folder = pair
    state = load_file(str(folder / 'model.safetensors'))
    _, dec = split_hf_clipseg(state)
    dec |= {'reduce.weight': torch.randn(16, 64), 'reduce.bias': torch.randn(16)}  # the original's unused layer
    torch.save(dec, tmp_path / 'rd16-uni.pth')
    pth = load_clipseg(tmp_path / 'rd16-uni.pth', backbone=ours.backbone, extract_layers=ours.extract_layers)
    # the conversion script's `clipseg.` prefix, as a bare safetensors file with config.json beside it
    (tmp_path / 'conv').mkdir()
    save_file({k.replace('clip.', 'clipseg.', 1) if k.startswith('clip.') else k: v for k, v in state.items()},
              str(tmp_path / 'conv' / 'weights.safetensors'))
    (tmp_path / 'conv' / 'config.json').write_text((folder / 'config.json').read_text())
    conv = load_clipseg(tmp_path / 'conv' / 'weights.safetensors', tokenizer=ours.backbone.tokenizer)
    pix = torch.randn(3, 3, 352, 352, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = hf(input_ids=ids, pixel_values=pix).logits
        cond = ours.text_embedding(['p0', 'p1', 'p2'])
        assert (pth(pix, cond)[:, 0] - ref).abs().max() < TOL
        assert (conv(pix, conv.text_embedding(['p0', 'p1', 'p2']))[:, 0] - ref).abs().max() < TOL
    assert pth.decoder.refined == ours.decoder.refined


def test_own_format_roundtrip(pair, tmp_path):
    hf, ours, ids, _ = pair
    save_clipseg(ours, tmp_path / 'own.safetensors', include_backbone=True)
    back = load_clipseg(tmp_path / 'own.safetensors', tokenizer=ours.backbone.tokenizer)
    pix = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        c = ours.text_embedding(['p0', 'p1'])
        assert (back(pix, c) - ours(pix, c)).abs().max() < 1e-6
        assert (back.text_embedding(['p0']) - c[:1]).abs().max() < 1e-6


def test_extract_layers_3_7_9_selectable():
    hf = randomise(CLIPSegForImageSegmentation(small_config(False, (1, 2, 3))))
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_clipseg(d, tokenizer=lambda t: token_ids(len(t)))
    assert ours.extract_layers == (1, 2, 3)
    pix, cond = torch.randn(1, 3, 352, 352), torch.randn(1, 24)
    with torch.no_grad():
        assert (ours(pix, cond)[:, 0] - hf(pixel_values=pix, conditional_embeddings=cond).logits).abs().max() < TOL


def test_offline_hub_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match='snapshot_download'):
        load_clipseg('CIDAS/clipseg-rd64-refined', cache_dir=str(tmp_path), offline=True)
    with pytest.raises(WeightsNotFoundError, match='CIDAS/clipseg-rd16'):
        hf_clipseg_files('CIDAS/clipseg-rd16', cache_dir=str(tmp_path), offline=True)


def test_vit_b16_sized_refined(tmp_path):
    "The released architecture (ViT-B/16, 512-d text, rd64 refined, read-outs 3/6/9) at 352, text and visual prompts."
    import open_clip
    cfg = CLIPSegConfig(vision_config=dict(patch_size=16, image_size=224), text_config=dict(eos_token_id=2),
                        use_complex_transposed_convolution=True)
    hf = randomise(CLIPSegForImageSegmentation(cfg), seed=11)
    hf.save_pretrained(tmp_path)
    ours = load_clipseg(tmp_path)
    assert ours.extract_layers == (3, 6, 9) and ours.decoder.refined and ours.backbone.width == 768
    ids = open_clip.get_tokenizer('ViT-B-16')(['a cat', 'a remote control'])
    g = torch.Generator().manual_seed(0)
    pix, cpix = torch.randn(1, 3, 352, 352, generator=g), torch.randn(2, 3, 352, 352, generator=g)
    with torch.no_grad():
        ref_t = hf(input_ids=ids, pixel_values=pix.expand(2, -1, -1, -1))
        ref_v = hf(pixel_values=pix.expand(2, -1, -1, -1), conditional_pixel_values=cpix)
        t = ours.text_embedding(['a cat', 'a remote control'])
        v = ours.visual_embedding(cpix, normalized=True)
        assert (t - ref_t.conditional_embeddings).abs().max() < TOL
        assert (ours(pix, t)[:, 0] - ref_t.logits).abs().max() < TOL
        assert (ours(pix, v)[:, 0] - ref_v.logits).abs().max() < TOL
