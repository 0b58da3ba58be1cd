"""Bad inputs at every public boundary: each row gives an input, the error or warning text it must produce, and — for the
commands — that nothing is written. Uses the shipped MiniCLIP and ShapeWorld scenes; every row runs in about a second."""
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from clipfss_nb.core import InputError, InputWarning, read_mask, load_image
from clipfss_nb.backbone import load_backbone, load_state_dict_file
from clipfss_nb.demo import shapeworld_episode, run_demo
from clipfss_nb.priors import compute_priors
from clipfss_nb.data import FolderDataset, make_voc_like
from console import run
from clipfss_nb.cli import clipfss_segment, clipfss_eval, clipfss_demo

EP = shapeworld_episode(0, 2)  # ladybug, a novel class of fold 0

@pytest.fixture(scope='module')
def bb():
    return load_backbone('miniclip-shapeworld', device='cpu', interpolation='bilinear')

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('inputs')
    sup, fg = EP['support'], (EP['support_mask'] == 1)
    Image.fromarray(sup).save(d / 's.png')
    Image.fromarray(fg.astype(np.uint8) * 255).save(d / 's_mask.png')
    Image.fromarray(EP['query']).save(d / 'q.png')
    pal = Image.fromarray(np.where(fg, 15, 0).astype(np.uint8), 'P')  # a VOC palette mask of class 15 ('person')
    pal.putpalette([0, 0, 0] + [128, 64, 0] * 255); pal.save(d / 'palette.png')
    Image.fromarray(np.zeros((128, 128), np.uint8)).save(d / 'empty.png')
    Image.fromarray(np.full((128, 128), 255, np.uint8)).save(d / 'full.png')
    Image.fromarray(fg[:, :100].astype(np.uint8) * 255).save(d / 'other_shape.png')  # 128x100: another aspect
    Image.fromarray(fg[::2, ::2].astype(np.uint8) * 255).save(d / 'half.png')  # 64x64: same aspect
    grey = fg.astype(np.uint8) * 255
    edge = fg ^ np.roll(fg, 1, 0)
    grey[edge] = 128; Image.fromarray(grey).save(d / 'grey.png')
    Image.new('RGB', (1, 1)).save(d / 'tiny.png')
    torch.save({'w': torch.zeros(1000)}, d / 'ok.pt'); raw = (d / 'ok.pt').read_bytes(); (d / 'trunc.pt').write_bytes(raw[:len(raw) // 2])
    raw = (Path(load_backbone.__globals__['bundled_dir']()) / 'miniclip-shapeworld' / 'model.safetensors').read_bytes()[:4096]
    (d / 'trunc.safetensors').write_bytes(raw)
    (d / 'a_file.txt').write_text('x')
    (d / 'a_folder').mkdir(); (d / 'a_folder' / 'keep').write_text('x')
    return d

def seg_args(d, **kw):
    a = dict(support=d / 's.png', support_mask=d / 's_mask.png', class_name='ladybug', query=d / 'q.png', out=d / 'out_seg', device='cpu')
    a.update(kw)
    argv = []
    for k, v in a.items():
        if v is None: continue
        flag = '--' + k.replace('_', '-')
        argv += [flag] if v is True else [flag, v]
    return argv + ['--quiet']

# (case, clipfss-segment flags, expected text on stderr); each must exit 2, print one line, and write nothing
SEGMENT_ERRORS = [
    ('empty support mask', dict(support_mask='empty.png'), 'no foreground pixel'),
    ('palette mask without --support-class', dict(support_mask='palette.png'), 'class indices [15]'),
    ('palette mask, class absent', dict(support_mask='palette.png', support_class='7'), 'no pixel of class 7; indices present: [0, 15]'),
    ('mask of another aspect ratio', dict(support_mask='other_shape.png'), 'another aspect ratio'),
    ('RGB photo as mask', dict(support_mask='s.png'), 'a photo?'),
    ('1x1 query', dict(query='tiny.png'), 'at least 8 pixels a side'),
    ('1x1 support', dict(support='tiny.png', support_mask='empty.png'), 'at least 8 pixels a side'),
    ('empty class name', dict(class_name=''), 'non-empty'),
    ('no class name for a text method', dict(class_name=None), 'needs a class name'),
    ('support-based method without supports', dict(support=None, support_mask=None, method='piclip-vvp-vtp'), 'needs support images'),
    ('masks and supports differ in number', dict(support_mask=None), '1 support images but 0 support masks'),
    ('--out is a file', dict(out='a_file.txt'), 'is a file; give a folder'),
    ('--out is a non-empty folder', dict(out='a_folder'), '--overwrite'),
    ('--out inside the package', dict(out='PACKAGE'), 'inside the installed package'),
    ('query not found', dict(query='nosuch.png'), 'not found'),
    ('unknown method', dict(method='nosuch'), 'unknown method'),
    ('random weights', dict(backbone='ViT-B-16'), 'random weights'),
    ('damaged backbone checkpoint (safetensors)', dict(backbone='trunc.safetensors'), 'trunc.safetensors is damaged'),
    ('damaged method checkpoint (.pt)', dict(method='prior-decoder', method_checkpoint='trunc.pt'), 'trunc.pt'),
]

@pytest.mark.parametrize('case,flags,text', SEGMENT_ERRORS, ids=[c[0] for c in SEGMENT_ERRORS])
def test_segment_refuses(files, case, flags, text):
    from clipfss_nb.cli import package_dir
    d = files
    fix = {k: (v if k in ('class_name', 'support_class', 'method', 'backbone') or v is None or v == '' else
               package_dir() / 'assets' / 'new_out' if v == 'PACKAGE' else d / v) for k, v in flags.items()}
    if flags.get('backbone') == 'trunc.safetensors': fix['backbone'] = d / 'trunc.safetensors'
    before = sorted(p.name for p in d.rglob('*'))
    code, out, err = run(clipfss_segment, seg_args(d, **fix))
    assert code == 2, (case, out, err)
    assert text in err.splitlines()[-1], err
    assert len([l for l in err.splitlines() if ': error: ' in l]) == 1 and err.splitlines()[-1].startswith('clipfss-segment: error: ')
    assert sorted(p.name for p in d.rglob('*')) == before  # nothing written
    assert not (package_dir() / 'assets' / 'new_out').exists()

# (case, flags, warning text): the command still answers, and says what it changed
SEGMENT_WARNINGS = [
    ('mask at half scale is resized', dict(support_mask='half.png'), 'resized (nearest), the aspect ratio matches'),
    ('grey-level mask is binarised', dict(support_mask='grey.png'), 'grey-level mask (values 0..255); binarised at 128'),
    ('all-foreground mask', dict(support_mask='full.png'), 'covers the whole image'),
    ('unknown words', dict(class_name='golden retriever'), "became <unk>: ['golden', 'retriever']"),
    ('MiniCLIP notice', dict(), 'MiniCLIP knows only the 20 ShapeWorld categories'),
    ('palette mask with --support-class', dict(support_mask='palette.png', support_class='15'), 'MiniCLIP knows only'),
]

@pytest.mark.parametrize('case,flags,text', SEGMENT_WARNINGS, ids=[c[0] for c in SEGMENT_WARNINGS])
def test_segment_warns(files, tmp_path, case, flags, text):
    d = files
    fix = {k: (v if k in ('class_name', 'support_class') else d / v) for k, v in flags.items()}
    code, out, err = run(clipfss_segment, seg_args(d, out=tmp_path / 'o', **fix))
    assert code in (0, None), err
    assert any(l.startswith('clipfss-segment: warning: ') and text in l for l in err.splitlines()), err
    assert err.count('MiniCLIP knows only') == 1  # said once
    assert (tmp_path / 'o' / 'q_mask.png').is_file()

# Python API: (case, call, expected error text)
def _api_cases(bb):
    q, s = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 3, 64, 64)
    m = torch.zeros(1, 1, 64, 64, dtype=torch.uint8); m[..., 20:40, 20:40] = 1
    im, sm = EP['support'], EP['support_mask']
    return [
        ('0/255 tensor to compute_priors', lambda: compute_priors(bb, q, s, m * 255, ['ladybug']), "255 means 'ignore'"),
        ('float image in [0, 255]', lambda: compute_priors(bb, q * 255, s, m, ['ladybug']), 'outside [0, 1]'),
        ('uint8 image tensor', lambda: compute_priors(bb, (q * 255).to(torch.uint8), s, m, ['ladybug']), 'divide uint8'),
        ('probability mask tensor', lambda: compute_priors(bb, q, s, m * 0.5, ['ladybug']), 'binarise them first'),
        ('class names as a string', lambda: compute_priors(bb, q, s, m, 'ladybug'), "pass ['ladybug']"),
        ('class name None', lambda: compute_priors(bb, q, s, m, [None]), 'non-empty strings'),
        ('class name empty', lambda: compute_priors(bb, q, s, m, ['']), 'non-empty strings'),
        ('wrong number of names', lambda: compute_priors(bb, q, s, m, ['ladybug', 'circle']), '2 class_names given for 1'),
        ('shapes do not fit', lambda: compute_priors(bb, q, s[..., :32, :32], m, ['ladybug']), 'shapes do not fit'),
        ('run_demo: mask of another shape', lambda: run_demo(bb, im, im, sm[:, :100], 'ladybug'), 'resize the mask'),
        ('run_demo: empty mask', lambda: run_demo(bb, im, im, np.zeros_like(sm), 'ladybug'), 'no foreground pixel'),
        ('run_demo: 1x1 query', lambda: run_demo(bb, im[:1, :1], im, sm, 'ladybug'), 'at least 8 pixels'),
        ('run_demo: float image', lambda: run_demo(bb, im / 255.0, im, sm, 'ladybug'), 'uint8'),
        ('run_demo: class names list', lambda: run_demo(bb, im, im, sm, ['ladybug']), 'non-empty strings'),
        ('load_image: float outside [0, 1]', lambda: load_image(np.full((8, 8, 3), 200.0)), 'must lie in [0, 1]'),
        ('read_mask: RGB photo', lambda: read_mask(im), 'a photo?'),
        ('read_mask: palette', lambda: read_mask(np.where(sm == 1, 15, 0).astype(np.uint8)), 'class indices [15]'),
    ]

API_IDS = [c[0] for c in _api_cases(None)]

@pytest.mark.parametrize('i', range(len(API_IDS)), ids=API_IDS)
def test_api_refuses(bb, i):
    case, call, text = _api_cases(bb)[i]
    with pytest.raises(InputError, match=None) as e: call()
    assert text in str(e.value), (case, str(e.value))
    assert '\n' not in str(e.value)

def test_api_warns_on_unknown_words_and_empty_support(bb):
    q, s = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 3, 64, 64)
    m = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    with pytest.warns(InputWarning, match=r"became <unk>: \['golden'"): compute_priors(bb, q, s, m + 1, ['golden retriever'])
    with pytest.warns(InputWarning, match='have no object pixel'): compute_priors(bb, q, s, m, ['ladybug'])

@pytest.mark.parametrize('name,text', [('trunc.pt', 'trunc.pt is damaged'), ('trunc.safetensors', 'trunc.safetensors is damaged')])
def test_damaged_checkpoints_are_named(files, name, text):
    with pytest.raises(InputError) as e: load_state_dict_file(files / name)
    assert text in str(e.value)

# clipfss-eval: (case, flags, expected error)
@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    return make_voc_like(tmp_path_factory.mktemp('voc') / 'sw', n=24, size=(48, 48))

@pytest.fixture(scope='module')
def folder3(tmp_path_factory):
    "images/ + masks/ with three images, one mask anti-aliased (grey levels)."
    d = tmp_path_factory.mktemp('folder3')
    (d / 'images').mkdir(); (d / 'masks').mkdir()
    for i in range(3):
        img = np.full((48, 48, 3), 40, np.uint8); img[10:30, 10 + i:30 + i] = (200, 30, 30)
        m = np.zeros((48, 48), np.uint8); m[10:30, 10 + i:30 + i] = 255
        if i == 0: m[9, 10:30] = 100; m[30, 10:30] = 180  # anti-aliased edges
        Image.fromarray(img).save(d / 'images' / f'im{i}.jpg'); Image.fromarray(m).save(d / 'masks' / f'im{i}.png')
    return d

EVAL_ERRORS = [
    ('unknown split', ['--split', 'nosuch'], "unknown split 'nosuch'"),
    ('zero episodes', ['--episodes', '0'], 'must be at least 1'),
    ('zero shots', ['--shots', '0'], 'must be at least 1'),
    ('--out is a folder', ['--out', 'FOLDER'], 'is a folder; give a file name'),
    ('random weights', ['--method', 'piclip-vtp', '--backbone', 'ViT-B-16'], 'random weights'),
]

@pytest.mark.parametrize('case,flags,text', EVAL_ERRORS, ids=[c[0] for c in EVAL_ERRORS])
def test_eval_refuses(voc, tmp_path, case, flags, text):
    (tmp_path / 'res').mkdir()
    flags = [str(tmp_path / 'res') if f == 'FOLDER' else f for f in flags]
    code, out, err = run(clipfss_eval, ['--root', voc, '--min-pixels', 100, '--img-size', 32, '--device', 'cpu', '--quiet',
                                        '--out', tmp_path / 'r.json', *flags])
    assert code == 2 and text in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / 'r.json').exists() and list((tmp_path / 'res').iterdir()) == []

def test_eval_more_shots_than_images(folder3, tmp_path):
    "HSNet draws supports independently, so with 3 images 5 shots repeat: documented, and said on stderr, never silent."
    code, out, err = run(clipfss_eval, ['--benchmark', 'folder', '--root', folder3, '--shots', 5, '--episodes', 3, '--min-pixels', 10,
                                        '--img-size', 32, '--device', 'cpu', '--quiet', '--out', tmp_path / 'r.json'])
    assert code in (0, None), err
    assert 'clipfss-eval: warning: class 1 has 2 support images besides the query, fewer than shots=5' in err, err

def test_grey_mask_in_folder_is_binarised_not_new_classes(folder3):
    with pytest.warns(InputWarning, match='grey-level mask'): ds = FolderDataset(folder3)
    assert ds.class_names == {1: 'class1'}
    assert set(np.unique(ds.load_label('im0')).tolist()) == {0, 1}

def test_demo_refuses(files, tmp_path):
    code, out, err = run(clipfss_demo, ['--out', files / 'a_folder', '--device', 'cpu'])
    assert code == 2 and 'is a folder; give a file name' in err, err
    code, out, err = run(clipfss_demo, ['--out', tmp_path / 'd.png', '--query', files / 'q.png', '--support', files / 's.png',
                                        '--support-mask', files / 'palette.png', '--class-name', 'ladybug', '--device', 'cpu'])
    assert code == 2 and 'class indices [15]' in err and not (tmp_path / 'd.png').exists(), err

def test_no_command_writes_into_the_package_by_default(files, voc, monkeypatch):
    "Run from inside the installed package, every command that writes refuses its default output before doing any work."
    from clipfss_nb.cli import (package_dir, clipfss_shapeworld, clipfss_train_miniclip, clipfss_train_clipseg, clipfss_train_decoder)
    pkg = package_dir()
    before = sorted(str(p) for p in pkg.rglob('*'))
    monkeypatch.chdir(pkg)
    d = files
    calls = [(clipfss_segment, ['--support', d / 's.png', '--support-mask', d / 's_mask.png', '--class-name', 'ladybug', '--query', d / 'q.png']),
             (clipfss_demo, ['--device', 'cpu']), (clipfss_shapeworld, []), (clipfss_train_miniclip, []), (clipfss_train_clipseg, []),
             (clipfss_train_decoder, []), (clipfss_eval, ['--root', voc, '--min-pixels', 100, '--episodes', 2, '--quiet'])]
    for cmd, argv in calls:
        code, out, err = run(cmd, argv)
        assert code == 2 and 'inside the installed package' in err, (cmd.__name__, err)
    assert sorted(str(p) for p in pkg.rglob('*') if '__pycache__' not in p.parts) == [p for p in before if '__pycache__' not in p]
