"""CLIPSeg unit tests that need no transformers: prompt engineering, broadcasting, checkpoints, training CLI, evaluator adapter."""
import inspect
import pytest
from conftest import table_row, EPISODES, TOLERANCE
import torch
import torch.nn.functional as F
from clipfss_nb.core import IMAGENET_MEAN, IMAGENET_STD, normalize
from clipfss_nb.clipseg import CLIPSeg, PromptEngineering, engineer_prompt, gaussian_blur
from clipfss_nb.clipseg_weights import load_clipseg, clipseg_metadata, shipped_clipseg
from clipfss_nb.cli import clipfss_train_clipseg
from clipfss_nb.clipseg_training import CLIPSegMethod, CLIPSegFeatures, clipseg_batch
from clipfss_nb.training import FeatureStore, TrainEpisodes, base_class_pairs
from clipfss_nb.shapeworld import write_shapeworld, SHAPEWORLD_FOLDS
from clipfss_nb.data import VOCDataset
from clipfss_nb.evaluate import evaluate, episode_lists
from clipfss_nb.methods import get_method
from clipfss_nb.testing import tiny_backbone, random_images, write_tiny_checkpoints


def test_blur_matches_separable_gaussian():
    x = torch.rand(3, 33, 41)
    g = torch.exp(-torch.arange(-7., 8.) ** 2 / 18); g /= g.sum()  # 15 taps, sigma 3
    ref = F.conv2d(F.pad(x[:, None], (7, 7, 7, 7), mode='reflect'), torch.outer(g, g)[None, None])[:, 0]
    assert (gaussian_blur(x) - ref).abs().max() < 1e-5


def test_prompt_engineering_box_and_background():
    img = normalize(torch.rand(3, 100, 100), IMAGENET_MEAN, IMAGENET_STD)
    m = torch.zeros(100, 100, dtype=torch.uint8); m[40:60, 10:90] = 1; m[0, 0] = 255  # ignore pixels are background
    out = engineer_prompt(img, m, PromptEngineering(size=None))
    assert out.shape == (3, 96, 96)  # 20×80 box + 10% per side → 24×96, padded square
    assert torch.allclose(out[:, 36:60][:, 2:22, 8:88], img[:, 40:60, 10:90])
    full = engineer_prompt(img, m)
    assert full.shape == (3, 352, 352)


def test_one_encoding_many_prompts_matches_repeats():
    torch.manual_seed(0)
    model = CLIPSeg(tiny_backbone(), extract_layers=(0, 1, 2), reduce_dim=16, ff_dim=32, refined=True).eval()
    x = model.preprocess(random_images(2, 64, 96))
    cond = torch.randn(6, model.backbone.embed_dim)
    idx = torch.tensor([0, 1, 0, 1, 1, 0])
    with torch.no_grad():
        assert torch.allclose(model(x, cond, idx), model(x[idx], cond), atol=1e-5)
        assert model(x, cond, idx).shape == (6, 1, 64, 96)  # non-square grid


def test_train_cli_and_evaluator(tmp_path):
    files = write_tiny_checkpoints(tmp_path / 'bb')
    out = tmp_path / 'ck.safetensors'
    clipfss_train_clipseg(fold=1, backbone=str(files['bundle']), steps=3, batch_size=4, n_train=30, n_val=60, size=64, out=str(out),
                          eval_episodes=4, data_root=str(tmp_path / 'sw'), threads=1, fp16=True)
    meta = clipseg_metadata(out)
    assert meta['extra']['train_args']['fold'] == 1
    assert set(meta['extra']['eval']['results']) == {'visual', 'text', 'all-foreground', 'support-copy'}
    assert out.stat().st_size < 1_000_000
    model = load_clipseg(out)  # the backbone comes back by the name stored in the file
    assert model.extract_layers == (0, 1, 2) and model.input_size == 64
    meth = CLIPSegMethod(model, mode='visual')
    q, s = random_images(2, 64, 64), random_images(2, 64, 64, seed=1)[:, None]
    sm = torch.zeros(2, 1, 64, 64, dtype=torch.uint8); sm[..., 10:40, 10:40] = 1
    p = meth.predict(q, s, sm, ['tomato', 'melon'])
    assert p.shape == (2, 64, 64) and 0 <= p.min() and p.max() <= 1


def test_training_samples_hide_novel_classes(tmp_path):
    write_shapeworld(tmp_path, n_train=25, n_val=0, size=64)
    train = VOCDataset(tmp_path, 'train')
    pairs, pools = base_class_pairs(train, 2, 'drop', 16)
    store = FeatureStore(CLIPSegFeatures(CLIPSeg(tiny_backbone(), extract_layers=(0, 1, 2), reduce_dim=8, ff_dim=16, input_size=64, prompt_size=64)), train)
    eps = TrainEpisodes(tuple(pairs), pools)
    assert not any(set(store.image(*eps[i].query)['label'].unique().tolist()) & set(SHAPEWORLD_FOLDS[2]) for i in range(40))  # no novel object shown
    b = clipseg_batch(store, [eps[i] for i in range(16)], pools, p_negative=1.0)
    assert b['negative'].all() and b['target'].sum() == 0  # all negatives: empty targets


def test_missing_files_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'): load_clipseg(tmp_path / 'nope.safetensors')
    (tmp_path / 'x.safetensors').write_bytes(b'')
    with pytest.raises(Exception): load_clipseg(tmp_path / 'x.safetensors')
    with pytest.raises(FileNotFoundError, match='config.json'): load_clipseg(tmp_path)


def test_shipped_decoders_are_what_the_command_makes():
    "The shipped cards' training arguments are the defaults of `clipfss-train-clipseg --fold F` (so the command reproduces them)."
    defaults = {k: p.default for k, p in inspect.signature(clipfss_train_clipseg).parameters.items()}
    for fold in range(4):
        args = clipseg_metadata(shipped_clipseg(fold))['extra']['train_args']
        assert args['fold'] == fold
        recipe = ('backbone', 'steps', 'batch_size', 'lr', 'size', 'seed', 'text_weight_max', 'p_text')
        assert {k: args[k] for k in recipe} == {k: defaults[k] for k in recipe}


@pytest.mark.parametrize('mode', ['visual', 'text'])
def test_reproduces_table_fold0(small_val, bb, mode):
    "The shipped fold-0 decoder on 100 fresh scenes lands near the table's fold-0 figure (one-shot and zero-shot)."
    eps, meta = episode_lists(small_val, 0, 1, 'hsnet', [0], EPISODES)
    res = evaluate(get_method(f'clipseg-{mode}', fold=0, backbone=bb), small_val, eps, 0, 'hsnet', 128, 'cpu', progress=False, meta=meta)
    assert abs(res['results']['miou'] - table_row(f'clipseg {mode}')) < TOLERANCE, (res['results']['miou'], table_row(f'clipseg {mode}'))
