"""`clipfss-eval` on 1 and 2 CPU processes (gloo, launched by `--processes 2` through `accelerate launch`): the metric
fields of the two JSONs are byte-identical."""
import json
import pytest
from clipfss_nb.data import VOCDataset, make_voc_like
from clipfss_nb.cli import clipfss_eval

METRICS = ('results', 'baselines', 'episodes_sha256')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return VOCDataset(make_voc_like(tmp_path_factory.mktemp('sw') / 'sw', n=40, seed=1))


def test_one_and_two_processes_write_identical_metrics(world, tmp_path, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', ''); monkeypatch.setenv('OMP_NUM_THREADS', '1')
    args = ['--root', str(world.root), '--protocol', 'pfenet', '--seeds', '5,6', '--episodes', '15', '--method', 'toy-prototype',
            '--img-size', '48', '--min-pixels', '300', '--quiet', '--threads', '1']
    clipfss_eval.main([*args, '--out', str(tmp_path / 'one.json')])
    clipfss_eval.main([*args, '--out', str(tmp_path / 'two.json'), '--processes', '2'])
    one, two = (json.loads((tmp_path / f).read_text()) for f in ('one.json', 'two.json'))
    assert two['protocol']['parallel'] == dict(processes=2, shards='strided episode indices', records=30)
    for k in METRICS: assert json.dumps(one[k]) == json.dumps(two[k]), k
    assert one['results']['per_seed']['5']['episodes'] == 15 and 0 < one['results']['miou'] < 100
    assert not list(tmp_path.glob('*.rank*'))  # the shard checkpoints are gone once the JSON is written


def test_reference_preset_through_clipfss_eval(world, tmp_path, capsys):
    "--preset piclip-reference: the method gets the query's original size and labels; pfenet padding is refused."
    from clipfss_nb.testing import write_tiny_checkpoints
    bundle = write_tiny_checkpoints(tmp_path / 'bb')['bundle']
    args = ['--root', str(world.root), '--episodes', '6', '--method', 'piclip-vtp-pir', '--backbone', str(bundle), '--min-pixels', '300',
            '--img-size', '64', '--quiet', '--device', 'cpu', '--out', str(tmp_path / 'p.json')]
    clipfss_eval.main([*args, '--preset', 'piclip-reference'])
    r = json.loads((tmp_path / 'p.json').read_text())
    cfg = r['method']['config']
    assert (cfg['vtp_mode'], cfg['vtp_resample'], cfg['vtp_grid']) == ('labels', 'pil', 'original')
    assert r['protocol']['parallel']['processes'] == 1 and r['results']['per_seed']['0']['episodes'] == 6
    clipfss_eval.main(args)  # the default recipe on the same episodes: another config, other numbers
    d = json.loads((tmp_path / 'p.json').read_text())
    assert d['method']['config']['vtp_mode'] == 'without' and d['results']['class_iou'] != r['results']['class_iou']
    with pytest.raises(SystemExit) as stop: clipfss_eval.main([*args, '--preset', 'piclip-reference', '--protocol', 'pfenet'])
    assert stop.value.code == 2 and '--protocol hsnet' in capsys.readouterr().err
    with pytest.raises(SystemExit): clipfss_eval.main([*args, '--preset', 'piclip-reference', '--method', 'support-copy'])
