"""The shipped CLIP-Driven Prototype Networks (reconstruction, `15_protonet`): files, guards, and the ShapeWorld-5i
table's fold-0 figures reproduced on a small evaluation of freshly written scenes."""
import json, subprocess, sys
from pathlib import Path
import pytest
from conftest import table_row, EPISODES, TOLERANCE
from clipfss_nb.backbone import bundled_dir
from clipfss_nb.evaluate import evaluate, episode_lists
from clipfss_nb.methods import get_method
from clipfss_nb.protonet import ProtoNetMethod, shipped_protonet, load_protonet


def test_shipped_files(bb):
    for f in range(4):
        path = shipped_protonet(f)
        assert path.stat().st_size < 2e6
        net, card = load_protonet(path)
        assert (card['fold'], card['variant'], card['backbone_sha256']) == (f, 'full', bb.weights_hash)
        assert card['results']['miou'] > card['results']['baselines']['all-foreground']
    assert (bundled_dir() / 'protonet-shapeworld' / 'MODEL_CARD.md').is_file()


@pytest.mark.parametrize('mode,row', [('few-shot', 'protonet full'), ('zero-shot', 'protonet zero-shot')])
def test_reproduces_table_fold0(small_val, bb, mode, row):
    eps, meta = episode_lists(small_val, 0, 1, 'hsnet', [0], EPISODES)
    res = evaluate(ProtoNetMethod(0, mode=mode, backbone=bb), small_val, eps, 0, 'hsnet', 128, 'cpu', progress=False, meta=meta)
    assert abs(res['results']['miou'] - table_row(row)) < TOLERANCE, (res['results']['miou'], table_row(row))


def test_by_name_and_fold_guard(small_val, bb):
    m = get_method('protonet', fold=2, backbone=bb)
    assert (m.fold, m.name) == (2, 'protonet') and m.weights_hash is not None
    assert get_method('protonet-zeroshot', fold=3, backbone=bb).name == 'protonet-zeroshot'
    with pytest.raises(ValueError, match="include fold 1's novel classes"):
        get_method('protonet', fold=1, checkpoint=str(shipped_protonet(0)), backbone=bb)


def test_cli_eval_by_name(small_val, tmp_path):
    out = tmp_path / 'r.json'
    cmd = [str(Path(sys.executable).parent / 'clipfss-eval')]
    run = subprocess.run(cmd + ['--benchmark', 'shapeworld', '--root', str(Path(small_val.root)), '--fold', '1', '--method', 'protonet',
                                '--episodes', '10', '--allow-missing-classes', '--out', str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    res = json.loads(out.read_text())
    assert res['method']['name'] == 'protonet' and res['method']['trained_fold'] == 1
    bad = subprocess.run(cmd + ['--benchmark', 'shapeworld', '--root', str(Path(small_val.root)), '--fold', '1', '--method', 'protonet',
                                '--checkpoint', str(shipped_protonet(0)), '--episodes', '4', '--allow-missing-classes', '--out', str(tmp_path / 'bad.json')],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "include fold 1's novel classes" in bad.stderr
    assert not (tmp_path / 'bad.json').exists()
