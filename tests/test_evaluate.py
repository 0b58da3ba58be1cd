"Metrics, scoring, the evaluator (cache, resume) and clipfss-eval end to end."
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
import numpy as np
import pytest
import torch
from clipfss_nb.data import VOCDataset, make_voc_like, build_fold_lists, sample_hsnet, sample_pfenet, episodes_from_tsv
from clipfss_nb.methods import intersect_union, IoUMeter, get_method, METHODS
from clipfss_nb.evaluate import make_view, score_episode, evaluate, ToyPrototype
from clipfss_nb.cli import clipfss_eval

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return VOCDataset(make_voc_like(tmp_path_factory.mktemp('sw') / 'sw', n=60, seed=1))

def _ep(tp, fp, fn, tn, ign=0):
    return (np.r_[np.ones(tp + fp), np.zeros(fn + tn), np.ones(ign)], np.r_[np.ones(tp), np.zeros(fp), np.ones(fn), np.zeros(tn), np.full(ign, 255)])

def test_worked_example_of_the_spec():
    m = IoUMeter([1, 2]); per_episode = []
    for c, (p, g) in ((1, _ep(90, 5, 5, 100)), (1, _ep(1, 5, 4, 190)), (2, _ep(30, 20, 10, 140, ign=10))):
        k = intersect_union(p, g); m.update(c, k); per_episode.append(k[0] / k[1])
    assert round(100 * m.miou, 1) == 66.4 and round(100 * m.fbiou, 1) == 80.5 and round(100 * np.mean(per_episode), 1) == 50.0
    s = m.summary({1: 'A', 2: 'B'})
    assert s['class_iou']['1'] == dict(name='A', iou=pytest.approx(100 * 91 / 110), episodes=2) and s['empty_classes'] == []

def test_ignore_and_empty_class():
    assert intersect_union(np.ones(4), np.array([255, 255, 1, 0])) == (1, 2, 0, 1)
    m = IoUMeter([1, 2]); m.update(1, (5, 10, 0, 0))
    assert m.miou == 0.25 and m.summary()['empty_classes'] == [2]

def test_hsnet_view_and_pfenet_scoring():
    img, lab = np.zeros((50, 100, 3), np.uint8), np.zeros((50, 100), np.uint8); lab[:, 50:] = 7; lab[0] = 255
    v = make_view(img, lab, 'hsnet', 32)
    assert v['image'].shape == (3, 32, 32) and (v['score_label'] == 7).sum() == 32 * 16 - 16
    v = make_view(img, lab, 'pfenet', 40)
    assert v['valid'] == (16, 40) and (v['label'][16:] == 255).all()
    prob = torch.zeros(40, 40); prob[:, 20:] = 1  # right half, including the padding rows
    assert score_episode(prob, v, 7, 'pfenet') == (49 * 50, 49 * 50, 49 * 50, 49 * 50)  # padding and 255 row ignored

def test_baselines_and_registry(world):
    assert {'all-foreground', 'support-copy'} <= set(METHODS)
    assert get_method('toy-prototype').name == 'toy-prototype'
    fl = build_fold_lists(world, 0, min_pixels=300)
    r = evaluate('all-foreground', world, sample_hsnet(fl.pairs, 1, 50), 0, 'hsnet', 48, progress=False)
    assert r['results'] == r['baselines']['all-foreground']
    assert 0 < r['results']['miou'] < 100 and r['method']['backbone_id'] is None

@pytest.mark.parametrize('protocol', ['hsnet', 'pfenet'])
def test_cache_on_equals_cache_off(world, protocol):
    fl = build_fold_lists(world, 0, min_pixels=300)
    eps = {3: sample_pfenet(fl, 2, 60, seed=3), 4: sample_pfenet(fl, 2, 60, seed=4)}
    on = evaluate(ToyPrototype(), world, eps, 0, protocol, 48, progress=False, cache=True)
    off = evaluate(ToyPrototype(), world, eps, 0, protocol, 48, progress=False, cache=False)
    assert on['results'] == off['results'] and on['baselines'] == off['baselines']
    assert off['cache']['feature_passes'] == 2 * 60 * 3 and on['cache']['feature_passes'] == on['cache']['distinct_images']
    small = evaluate(ToyPrototype(), world, eps, 0, protocol, 48, progress=False, cache=True, cache_size=3)
    assert small['results'] == on['results']

def test_resume_after_exception(world, tmp_path):
    class Crash(ToyPrototype):
        calls = 0
        def predict(self, *a, **k):
            Crash.calls += 1
            if Crash.calls == 37: raise RuntimeError('boom')
            return super().predict(*a, **k)
    fl = build_fold_lists(world, 0, min_pixels=300)
    eps = {0: sample_hsnet(fl.pairs, 1, 30), 1: sample_hsnet(fl.pairs, 1, 30, seed=1)}
    full = evaluate(ToyPrototype(), world, eps, 0, 'hsnet', 48, progress=False)
    with pytest.raises(RuntimeError): evaluate(Crash(), world, eps, 0, 'hsnet', 48, progress=False, out=tmp_path / 'r.json', checkpoint_every=4)
    ck = json.loads((tmp_path / 'r.json.ckpt.json').read_text())
    assert ck['seeds']['0']['done'] == 30 and ck['seeds']['1']['done'] == 4
    r = evaluate(Crash(), world, eps, 0, 'hsnet', 48, progress=False, out=tmp_path / 'r.json', checkpoint_every=4)
    assert r['results'] == full['results'] and r['timing']['resumed'] and not (tmp_path / 'r.json.ckpt.json').exists()
    # a checkpoint of a different run is not trusted
    (tmp_path / 'x.ckpt').write_text(json.dumps(dict(fingerprint='other', seeds={}, elapsed=0, passes=0)))
    r2 = evaluate(ToyPrototype(), world, eps, 0, 'hsnet', 48, progress=False, checkpoint=tmp_path / 'x.ckpt')
    assert r2['results'] == full['results'] and not r2['timing']['resumed']

def _cli(*args, **kw):
    exe = shutil.which('clipfss-eval') or str(Path(sys.executable).parent / 'clipfss-eval')
    return subprocess.Popen([exe, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

def test_cli_end_to_end(world, tmp_path):
    out = tmp_path / 'res.json'
    p = _cli('--benchmark', 'shapeworld', '--root', world.root, '--fold', 1, '--shots', 1, '--protocol', 'pfenet', '--seeds', '5,6',
             '--episodes', 40, '--method', 'support-copy', '--out', out, '--img-size', 48, '--device', 'cpu', '--min-pixels', 300, '--quiet')
    so, se = p.communicate(timeout=300)
    assert p.returncode == 0, se
    r = json.loads(out.read_text())
    assert r['protocol']['protocol'] == 'pfenet' and r['protocol']['seeds'] == [5, 6] and r['protocol']['episodes'] == 40
    assert r['protocol']['fold_classes'] == [6, 7, 8, 9, 10] and r['protocol']['shots'] == 1 and r['protocol']['img_size'] == 48
    assert set(r['results']['per_seed']) == {'5', '6'} and set(r['baselines']) == {'all-foreground', 'support-copy'}
    for k in ('miou', 'miou_std', 'fbiou', 'fbiou_std', 'class_iou'): assert k in r['results']
    assert r['method']['name'] == 'support-copy' and 'weights_hash' in r['method'] and r['timing']['seconds'] > 0
    assert r['dataset']['name'] == 'shapeworld' and len(episodes_from_tsv((tmp_path / 'res.json.episodes.seed6.tsv').read_text())) == 40
    assert 'mIoU' in so
    # the console function called from Python gives the same numbers
    assert clipfss_eval(root=str(world.root), fold=1, protocol='pfenet', seeds='5,6', episodes=40, out=str(tmp_path / 'b.json'),
                        img_size=48, device='cpu', min_pixels=300, quiet=True) is None
    assert json.loads((tmp_path / 'b.json').read_text())['results'] == r['results']

def test_cli_folder_benchmark(tmp_path):
    from PIL import Image
    for c in ('cat', 'dog'):
        (tmp_path / 'own' / c).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((20, 20, 3), 40 * k, np.uint8)).save(tmp_path / 'own' / c / f'{k}.jpg')
            m = np.zeros((20, 20), np.uint8); m[2 + k:12, 3:15] = 255; Image.fromarray(m).save(tmp_path / 'own' / c / f'{k}.png')
    clipfss_eval(benchmark='folder', root=str(tmp_path / 'own'), shots=2, episodes=12, min_pixels=50, img_size=32,
                 method='all-foreground', out=str(tmp_path / 'f.json'), quiet=True)
    r = json.loads((tmp_path / 'f.json').read_text())
    assert r['protocol']['fold_classes'] == [1, 2] and r['results']['per_seed']['0']['episodes'] == 12

def test_cli_resume_after_kill(world, tmp_path):
    out = tmp_path / 'k.json'
    args = ('--root', world.root, '--episodes', 400, '--method', 'toy-prototype', '--img-size', 48, '--device', 'cpu',
            '--min-pixels', 300, '--checkpoint-every', 20, '--quiet', '--out', out)
    p = _cli(*args)
    ck, t0 = Path(str(out) + '.ckpt.json'), time.time()
    while not ck.exists() and p.poll() is None and time.time() - t0 < 240: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    if out.exists(): pytest.skip('run finished before it could be killed')
    done = json.loads(ck.read_text())['seeds']['0']['done']
    assert 0 < done < 400
    p = _cli(*args); so, se = p.communicate(timeout=600); assert p.returncode == 0, se
    resumed = json.loads(out.read_text())
    assert resumed['timing']['resumed']
    clipfss_eval(root=str(world.root), episodes=400, method='toy-prototype', img_size=48, device='cpu',
                 min_pixels=300, quiet=True, out=str(tmp_path / 'ref.json'))
    ref = json.loads((tmp_path / 'ref.json').read_text())
    assert resumed['results'] == ref['results'] and resumed['baselines'] == ref['baselines']
