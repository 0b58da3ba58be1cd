"Tests of MiniCLIP: tokenizer, loss, training step, bundle round trip and the shipped checkpoint."
import os, time
import numpy as np
import pytest
from pathlib import Path
import torch
import open_clip
from clipfss_nb.backbone import WordTokenizer, ConvStem, load_backbone, bundled_dir
from clipfss_nb.shapeworld import ShapeWorld
from clipfss_nb.miniclip import MINICLIP_NAME, miniclip_tokenizer, miniclip_config, build_miniclip
from clipfss_nb.miniclip_training import TRAIN_DEFAULTS, model_card, caption_targets, contrastive_loss, prompt_losses, train_miniclip, save_miniclip, zero_shot_eval, scene_bank, bank_batch, caption_key

SLOW = pytest.mark.skipif(not os.environ.get('CLIPFSS_SLOW'), reason='slow: set CLIPFSS_SLOW=1')
SHIPPED = bundled_dir() / MINICLIP_NAME


def tiny_cfg(tok):  # the shipped architecture scaled down: a convolutional stem of stride 16, two blocks
    return miniclip_config(tok) | dict(vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=2, head_width=32),
                                       text_cfg=dict(context_length=24, vocab_size=tok.vocab_size, width=64, heads=2, layers=1),
                                       conv_stem=[[8, 3, 2], [16, 3, 2], [32, 3, 2], [64, 3, 2]])


def test_tokenizer_round_trip(tmp_path):
    tok = miniclip_tokenizer()
    caps = [c for i in range(100) for c in ShapeWorld(128, 0).sample(i)['captions']]
    ids = tok(caps)
    assert ids.shape == (len(caps), tok.context_length)
    assert (ids == tok.unk_id).sum() == 0  # every caption word is in the vocabulary
    assert [tok.decode(r) for r in ids[:20]] == caps[:20]
    assert (ids.argmax(-1) == (ids > 0).sum(-1) - 1).all()  # EOT is the largest id, last non-pad token
    tok.save(tmp_path / 'tokenizer.json')
    tok2 = WordTokenizer.load(tmp_path / 'tokenizer.json')
    assert tok2.itos == tok.itos and torch.equal(tok2(caps), ids)


def test_targets_and_loss():
    t = caption_targets(['1,2', '3', '1,2', '3'])
    assert torch.allclose(t.sum(1), torch.ones(4)) and t[0, 2] == 0.5 and t[0, 1] == 0
    f = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    ref = open_clip.loss.ClipLoss()(f, f, torch.tensor(20.))
    assert torch.allclose(contrastive_loss(f, f, torch.tensor(20.), caption_targets(list('abcde'))), ref, atol=1e-5)


def test_scene_bank_reads_classes_from_captions():
    bank = scene_bank(40, size=64, workers=2, chunk=16)
    sw = ShapeWorld(64, 0, 'train')
    for i in range(40):
        s = sw.sample(i)
        assert np.array_equal(bank.images[i], s['image'])
        assert set(np.flatnonzero(bank.named[i]) + 1) == set(s['classes'])
        y0, y1, x0, x1 = bank.boxes[i]  # every object pixel inside the box, none outside it
        assert s['instances'][y0:y1, x0:x1].astype(bool).sum() == s['instances'].astype(bool).sum()
    x, caps, named = bank_batch(bank, np.random.default_rng(1), 32, side=32)  # crops around the objects keep the captions
    assert x.shape == (32, 3, 32, 32)
    for cap, row in zip(caps, named):  # every drawn caption agrees with the classes its scene names
        key = caption_key(cap)
        if not key.startswith('-'): assert {int(c) for c in key.split(',')} == set(np.flatnonzero(row.numpy()) + 1)
        else: assert row[int(key[1:]) - 1] == 0


def test_prompt_losses_prefer_the_named_class():
    e = torch.nn.functional.normalize(torch.randn(20, 16), dim=-1)
    named = torch.zeros(2, 20); named[0, 3] = 1; named[1, [5, 7]] = 1
    img = torch.nn.functional.normalize(torch.stack([e[3], e[5] + e[7]]), dim=-1)
    cls, neg = prompt_losses(img, e, -e, torch.tensor(30.), named)
    cls_bad, neg_bad = prompt_losses(img.flip(0), e, -e, torch.tensor(30.), named)
    assert cls < cls_bad and neg < neg_bad


def test_tiny_training_learns():
    tok = miniclip_tokenizer()
    m, _, h = train_miniclip(steps=12, batch_size=16, lr=1e-3, warmup=2, log_every=4, size=64, bank=64, workers=1, cfg=tiny_cfg(tok), verbose=False)
    assert h['loss'][-1] < h['loss'][0]
    bn = m.visual.conv1[1]  # the stem's first BatchNorm: trained statistics, frozen in the returned (eval) model
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.num_batches_tracked == 12 and not bn.training
    assert h['model_cfg']['conv_stem'] == tiny_cfg(tok)['conv_stem']


def test_training_is_seeded():
    tok = miniclip_tokenizer()
    kw = dict(steps=2, batch_size=8, lr=1e-3, warmup=1, log_every=1, size=64, bank=16, workers=1, cfg=tiny_cfg(tok), verbose=False)
    (m1, _, h1), (m2, _, h2) = train_miniclip(**kw), train_miniclip(**kw)
    assert h1['loss'] == h2['loss']
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()): assert torch.equal(a, b), k


def test_bundle_round_trip(tmp_path):
    tok = miniclip_tokenizer(); cfg = tiny_cfg(tok)
    torch.manual_seed(0); model = build_miniclip(cfg).eval()
    save_miniclip(model, tok, tmp_path / 'b', cfg)
    bb = load_backbone(str(tmp_path / 'b'), device='cpu')
    x = torch.rand(3, 3, 64, 64); texts = ['a photo of a kite.', 'a photo without a gem.']
    with torch.no_grad():
        assert torch.equal(bb.clip.encode_image(x), model.encode_image(x))
        torch.testing.assert_close(bb.clip.encode_text(bb.tokenizer(texts)), model.encode_text(tok(texts)), rtol=0, atol=1e-5)  # float rounding only


@pytest.mark.skipif(not (SHIPPED / 'config.json').is_file(), reason='no shipped checkpoint')
def test_shipped_bundle_loads_fast_and_fits():
    files = {p.name for p in SHIPPED.iterdir()}
    assert {'config.json', 'model.safetensors', 'tokenizer.json', 'MODEL_CARD.md'} <= files
    assert (SHIPPED / 'model.safetensors').stat().st_size <= 10 * 2**20
    load_backbone(MINICLIP_NAME, device='cpu')  # warm imports
    t = time.perf_counter(); bb = load_backbone(MINICLIP_NAME, device='cpu'); dt = time.perf_counter() - t
    assert dt < 2.0, dt
    assert isinstance(bb.clip, open_clip.CLIP) and bb.n_blocks == 3 and isinstance(bb.visual.conv1, ConvStem)
    # a quick zero-shot check on 100 held-out single-object scenes
    r = zero_shot_eval(bb.clip, bb.tokenizer, n_single=100, n_multi=0)
    assert r['top1'] >= 0.85, r['top1']  # chance is 0.05; 94.6% on the model card's 500 scenes; the bar (0.9) is the slow test below


@SLOW
@pytest.mark.skipif(not (SHIPPED / 'config.json').is_file(), reason='no shipped checkpoint')
def test_shipped_quality_bar():
    bb = load_backbone(MINICLIP_NAME, device='cpu')
    r = zero_shot_eval(bb.clip, bb.tokenizer)
    assert r['top1'] >= 0.90, r['top1']


def test_bad_size_schedule_fails_before_any_work():
    with pytest.raises(ValueError, match='summing to 1'):
        train_miniclip(steps=2, bank=10**9, size_schedule=((0.5, 0.5),), verbose=False)  # a 10^9-scene bank would never finish


def test_model_card_records_the_initialisation_and_crops():
    cfg = miniclip_config(miniclip_tokenizer())
    hist, metrics = dict(train_seconds=60., bank_seconds=5., loss=[1.0]), dict(top1=0.5, mAP=0.5)
    plain, mimetic = (model_card(cfg, hist, metrics, TRAIN_DEFAULTS | dict(mimetic_init=m)) for m in (False, True))
    assert '--mimetic_init' not in plain and 'open_clip defaults' in plain
    assert '--seed 0 --mimetic_init`' in mimetic and 'mimetic attention' in mimetic
    assert '--shrink_scenes' not in plain and 'holding all of its objects' in plain
    shrunk = model_card(cfg, hist, metrics, TRAIN_DEFAULTS | dict(crop_to_objects=False))
    assert '--seed 0 --shrink_scenes`' in shrunk and 'the scenes are shrunk' in shrunk
    assert '--seed 0`' in plain and 'drops 50% of the patch tokens' in plain and 'last 10% of the steps' in plain  # the defaults
    assert 'a convolutional stem (`ConvStem`' in plain and '--patchify' not in plain
    unmasked = model_card(cfg, hist, metrics, TRAIN_DEFAULTS | dict(patch_dropout=0.))
    assert '--seed 0 --patch_dropout 0.0`' in unmasked and 'every training pass sees every token' in unmasked
    tail = model_card(cfg, hist, metrics, TRAIN_DEFAULTS | dict(unmasked_tail=0.05))
    assert '--seed 0 --unmasked_tail 0.05`' in tail and 'last 5% of the steps' in tail
    patchify_cfg = miniclip_config(miniclip_tokenizer(), conv_stem=False, vision_layers=6)
    patchify = model_card(patchify_cfg, hist, metrics, TRAIN_DEFAULTS | dict(conv_stem=False, vision_layers=6))
    assert '--seed 0 --patchify --vision_layers 6`' in patchify and 'a patchify conv' in patchify


def test_cli_flag_reaches_training(monkeypatch, tmp_path):
    import clipfss_nb.cli as cli
    seen = {}
    monkeypatch.setattr(cli, 'train_and_save', lambda out, eval_every, **kw: seen.update(kw, out=out))
    tail = TRAIN_DEFAULTS['unmasked_tail']
    cases = ((['--mimetic-init'], True, True, 0.5, tail, True, 3), ([], False, True, 0.5, tail, True, 3),
             (['--shrink_scenes'], False, False, 0.5, tail, True, 3), (['--patch-dropout', '0'], False, True, 0.0, tail, True, 3),
             (['--unmasked_tail', '0.2'], False, True, 0.5, 0.2, True, 3), (['--patchify', '--vision-layers', '6'], False, True, 0.5, tail, False, 6))
    for i, (argv, mimetic, crops, dropout, unmasked, stem, layers) in enumerate(cases):
        cli.clipfss_train_miniclip.main(['--out', str(tmp_path / str(i))] + argv)
        assert seen['mimetic_init'] is mimetic and seen['crop_to_objects'] is crops and seen['steps'] == TRAIN_DEFAULTS['steps']
        assert seen['patch_dropout'] == dropout and seen['unmasked_tail'] == unmasked
        assert seen['conv_stem'] is stem and seen['vision_layers'] == layers


def test_cli_never_overwrites_the_shipped_bundle(monkeypatch, tmp_path, capsys):
    import clipfss_nb.cli as cli
    monkeypatch.setattr(cli, 'train_and_save', lambda out, eval_every, **kw: pytest.fail('training must not start'))
    monkeypatch.chdir(tmp_path)
    shipped = bundled_dir() / MINICLIP_NAME
    for argv, message in ((['--out', str(shipped)], 'inside the installed package'),
                          (['--out', str(shipped), '--overwrite'], '--ship')):
        with pytest.raises(SystemExit) as exit_info: cli.clipfss_train_miniclip.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / 'runs' / MINICLIP_NAME).mkdir(parents=True); (tmp_path / 'runs' / MINICLIP_NAME / 'config.json').write_text('{}')
    with pytest.raises(SystemExit): cli.clipfss_train_miniclip.main([])  # the default output exists: refused
    assert '--overwrite' in capsys.readouterr().err
    monkeypatch.setattr(cli, 'train_and_save', lambda out, eval_every, **kw: kw.update(out=out) or setattr(cli, '_seen', out))
    cli.clipfss_train_miniclip.main(['--ship'])
    assert Path(cli._seen) == shipped  # only --ship targets the package's bundle
    del cli._seen


def test_crops_reach_training():
    tok = miniclip_tokenizer()
    kw = dict(steps=1, batch_size=8, lr=1e-3, warmup=1, log_every=1, size=64, bank=16, workers=1, cfg=tiny_cfg(tok), verbose=False)
    losses = {c: train_miniclip(**kw, crop_to_objects=c)[2]['loss'] for c in (True, False)}
    assert losses[True] != losses[False]  # the first stage (32 px) sees crops in one run, shrunk scenes in the other
    full = {c: train_miniclip(**kw, crop_to_objects=c, size_schedule=((1.0, 1.0),))[2]['loss'] for c in (True, False)}
    assert full[True] == full[False]  # at the full side there is nothing to crop


def test_patch_dropout_reaches_training():
    tok = miniclip_tokenizer()
    kw = dict(steps=2, batch_size=8, lr=1e-3, warmup=1, log_every=1, size=64, bank=16, workers=1, cfg=tiny_cfg(tok), verbose=False)
    runs = {(p, t): train_miniclip(**kw, patch_dropout=p, unmasked_tail=t) for p, t in ((0., 0.), (0.5, 0.), (0.5, 1.), (0.5, 0.5))}
    loss = {k: h['loss'] for k, (_, _, h) in runs.items()}
    assert loss[(0.5, 0.)][0] != loss[(0., 0.)][0]  # half the tokens: another first step
    assert loss[(0.5, 1.)] == loss[(0., 0.)]  # an unmasked tail of every step: no dropout at all
    assert loss[(0.5, 0.5)][0] == loss[(0.5, 0.)][0] and loss[(0.5, 0.5)][1] != loss[(0.5, 0.)][1]  # only the last step unmasked
    for model, _, _ in runs.values(): assert isinstance(model.visual.patch_dropout, torch.nn.Identity)  # returned ready for test time
    with pytest.raises(ValueError, match='patch_dropout'): train_miniclip(**kw | dict(bank=10**9), patch_dropout=1.0)
    with pytest.raises(ValueError, match='vision_layers'): train_miniclip(**kw | dict(bank=10**9, cfg=None), vision_layers=0)
