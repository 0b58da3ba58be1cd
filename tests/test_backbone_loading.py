"""Loading without silent mismatches: OpenAI-format weights get QuickGELU, a contradicting choice is an error, a path that
names OpenAI without saying so in the file warns, and open_clip's "initialized randomly" message does not reach the
user when weights are loaded right after."""
import json, logging
import pytest
import torch
import open_clip
from clipfss_nb.backbone import load_backbone, OPENAI_META_KEYS
from clipfss_nb.testing import make_tiny_clip, tiny_clip_cfg, tiny_tokenizer

RANDOM_INIT = 'initialized randomly'


def openai_layout(clip):
    "A state dict as OpenAI's TorchScript .pt has it: the model's keys plus the three metadata entries (weights_only-safe)."
    state = {k: v.detach().clone().contiguous() for k, v in clip.state_dict().items()}
    vis = clip.visual
    state.update(input_resolution=torch.tensor(vis.image_size[0] if isinstance(vis.image_size, tuple) else vis.image_size),
                 context_length=torch.tensor(clip.context_length), vocab_size=torch.tensor(clip.vocab_size))
    assert set(OPENAI_META_KEYS) <= set(state)
    return state


@pytest.fixture(scope='module')
def vit_openai_pt(tmp_path_factory):
    "Random ViT-B/16 built with QuickGELU, saved (fp16, to keep the file small) in OpenAI's key layout."
    torch.manual_seed(0)
    clip = open_clip.create_model('ViT-B-16', pretrained=None, force_quick_gelu=True).eval().half().float()
    path = tmp_path_factory.mktemp('oa') / 'ViT-B-16.pt'
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in openai_layout(clip).items()}, path)
    return clip, path


def act(bb): return type(bb.visual.transformer.resblocks[0].mlp.gelu).__name__


def test_openai_checkpoint_picks_quickgelu_and_stays_quiet(vit_openai_pt, caplog, capsys):
    clip, path = vit_openai_pt
    with caplog.at_level(logging.INFO):
        bb = load_backbone('ViT-B-16', checkpoint=path, device='cpu')
    assert act(bb) == 'QuickGELU'
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad(): assert torch.allclose(bb(bb.preprocess(x)).image_embed, clip.encode_image(bb.preprocess(x)), atol=1e-4)
    assert RANDOM_INIT not in caplog.text and RANDOM_INIT not in capsys.readouterr().err
    with pytest.raises(ValueError, match='asks for GELU'): load_backbone('ViT-B-16', checkpoint=path, device='cpu', quick_gelu=False)


def test_random_init_message_stays_when_true(caplog):
    "Without weights the model really is random: the message is kept (it is not filtered for good)."
    with caplog.at_level(logging.WARNING): load_backbone('ViT-B-16', device='cpu')
    assert RANDOM_INIT in caplog.text
    caplog.clear()
    assert not any(isinstance(f, type) or 'DropRandomInit' in type(f).__name__ for f in logging.getLogger().filters)


@pytest.fixture
def tiny_files(tmp_path):
    clip = make_tiny_clip()
    cfg = tiny_clip_cfg() | dict(quick_gelu=False)
    (tmp_path / 'tiny.json').write_text(json.dumps(cfg)); tiny_tokenizer().save(tmp_path / 'tiny.tokenizer.json')
    cfg.pop('quick_gelu'); (tmp_path / 'silent.json').write_text(json.dumps(cfg))  # a config that does not say
    torch.save(openai_layout(clip), tmp_path / 'oa.pt')
    plain = {k: v.contiguous() for k, v in clip.state_dict().items()}
    (tmp_path / 'openai-weights').mkdir(); torch.save(plain, tmp_path / 'openai-weights' / 'w.pt')
    torch.save(plain, tmp_path / 'w.pt')
    return tmp_path


def test_config_checkpoint_mismatch_is_an_error(tiny_files):
    with pytest.raises(ValueError, match="OpenAI's format.*asks for GELU"):
        load_backbone(str(tiny_files / 'tiny.json'), checkpoint=tiny_files / 'oa.pt', device='cpu')
    bb = load_backbone(str(tiny_files / 'tiny.json'), checkpoint=tiny_files / 'oa.pt', device='cpu', quick_gelu=True)
    assert act(bb) == 'QuickGELU'


def test_vendor_named_path_warns(tiny_files, recwarn):
    "A plain state dict says nothing about its activation; a path naming OpenAI while GELU is built gets a warning."
    with pytest.warns(UserWarning, match='QuickGELU'):
        load_backbone(str(tiny_files / 'silent.json'), checkpoint=tiny_files / 'openai-weights' / 'w.pt', device='cpu')
    recwarn.clear()
    bb = load_backbone(str(tiny_files / 'silent.json'), checkpoint=tiny_files / 'w.pt', device='cpu')  # nothing known: config, silently
    assert act(bb) == 'GELU' and not [w for w in recwarn if 'QuickGELU' in str(w.message)]
