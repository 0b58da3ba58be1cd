"""`clipfss-segment` end to end on own images: a folder of PNG and JPEG queries of mixed sizes and modes, K shots, a
zero-shot method, masks at the original sizes, and the memory bound on a 6000×6000 query."""
import contextlib, io, json, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from clipfss_nb.demo import shapeworld_episode
from clipfss_nb.cli import clipfss_segment

def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: clipfss_segment.main([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()

@pytest.fixture(scope='module')
def shots(tmp_path_factory):
    "Two ladybug supports (0/255 PNG masks) and a query folder: PNG, JPEG, RGBA PNG and greyscale PNG of four sizes."
    d = tmp_path_factory.mktemp('own')
    for k in (2, 7):
        ep = shapeworld_episode(0, k)
        Image.fromarray(ep['support']).save(d / f's{k}.png')
        Image.fromarray((ep['support_mask'] == 1).astype(np.uint8) * 255).save(d / f's{k}_mask.png')
    q = d / 'photos'; q.mkdir()
    ep = shapeworld_episode(0, 2)
    img = Image.fromarray(ep['query'])
    img.save(q / 'a.png')
    img.resize((300, 200)).save(q / 'b.jpg', quality=90)
    img.resize((97, 161)).convert('RGBA').save(q / 'c.png')
    img.resize((640, 480)).convert('L').save(q / 'd.jpeg')
    (q / 'notes.txt').write_text('not an image')
    return d, ep

def test_folder_of_mixed_images(shots, tmp_path):
    d, ep = shots
    out = tmp_path / 'out'
    code, so, se = run(['--support', d / 's2.png', '--support-mask', d / 's2_mask.png', '--support', d / 's7.png', '--support-mask', d / 's7_mask.png',
                        '--class-name', 'ladybug', '--query', d / 'photos', '--out', out, '--device', 'cpu'])
    assert code == 0, se
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f'{s}_{k}.png' for s in 'abcd' for k in ('mask', 'overlay')] + ['summary.json'])
    for stem, src in (('a', 'a.png'), ('b', 'b.jpg'), ('c', 'c.png'), ('d', 'd.jpeg')):
        mask = Image.open(out / f'{stem}_mask.png')
        assert mask.size == Image.open(d / 'photos' / src).size and mask.mode == 'L'
        assert set(np.unique(np.array(mask)).tolist()) <= {0, 255}
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['method']['name'] == 'piclip-vvp-vtp' and len(summary['supports']) == 2 and len(summary['queries']) == 4
    assert summary['backbone'] == 'miniclip-shapeworld' and len(summary['backbone_sha256']) == 64
    assert summary['threshold_why'].startswith('chosen on the base classes') and summary['timings']['seconds_per_query'] > 0
    pred = np.array(Image.open(out / 'a_mask.png')) == 255
    gt = ep['query_label'] == 1
    assert (pred & gt).sum() / (pred | gt).sum() > 0.4  # a real segmentation of the query's ladybug
    assert 'segment: 100%' in se or '4/4' in se  # tqdm progress on stderr

def test_zero_shot_and_python_api(shots):
    from clipfss_nb.segment import segment
    d, ep = shots
    res = segment(d / 'photos' / 'a.png', class_name='ladybug', method='piclip-vtp-pir', progress=False)
    assert res['method']['name'] == 'piclip-vtp-pir' and res['masks'][0].shape == (128, 128) and res['supports'] == []

def test_large_query_stays_bounded(tmp_path):
    "A 6000×6000 JPEG: peak memory (VmHWM of a fresh process) under 2 GB, mask written at 6000×6000."
    g = Image.linear_gradient('L').resize((6000, 6000))
    Image.merge('RGB', (g, g.transpose(Image.Transpose.ROTATE_90), g.point(lambda v: 255 - v))).save(tmp_path / 'big.jpg', quality=80)
    ep = shapeworld_episode(0, 2)
    Image.fromarray(ep['support']).save(tmp_path / 's.png')
    Image.fromarray((ep['support_mask'] == 1).astype(np.uint8) * 255).save(tmp_path / 'm.png')
    code = textwrap.dedent(f'''
        import re
        from clipfss_nb.cli import clipfss_segment
        clipfss_segment.main(['--support', '{tmp_path}/s.png', '--support-mask', '{tmp_path}/m.png', '--class-name', 'ladybug',
                              '--query', '{tmp_path}/big.jpg', '--out', '{tmp_path}/out', '--quiet', '--device', 'cpu'])
        print('PEAK_MB', int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)''')  # this process's peak RSS
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    peak = float(p.stdout.split('PEAK_MB')[1])
    print(f'peak RSS {peak:.0f} MB')
    assert peak < 2048
    assert Image.open(tmp_path / 'out' / 'big_mask.png').size == (6000, 6000)
    assert max(Image.open(tmp_path / 'out' / 'big_overlay.png').size) == 1024
