"""`--precision` at the command line: bf16 and fp32 runs of `clipfss-eval` are recorded as such and never share a resume
key, bad values and the fp32-only reference preset are refused in one line, the feature caches of a bf16 and an fp32
CLIP are different files, and a training command runs with a bf16 frozen CLIP. Tiny random CLIP, tiny data: seconds."""
import json
from pathlib import Path
import pytest
import torch
from clipfss_nb.backbone import load_backbone, set_precision
from clipfss_nb.data import VOCDataset, make_voc_like, episodes_from_tsv
from clipfss_nb.evaluate import run_fingerprint
from clipfss_nb.methods import BASELINES
from clipfss_nb.priors import PriorConfig, PriorMethod
from clipfss_nb.training import FeatureStore
from clipfss_nb.prior_decoder import PriorFeatures, load_prior_decoder
from clipfss_nb.protonet import ProtoFeatures
from clipfss_nb.clipseg import CLIPSeg
from clipfss_nb.clipseg_training import CLIPSegFeatures
from clipfss_nb.testing import write_tiny_checkpoints, tiny_backbone
from console import run
from clipfss_nb.cli import clipfss_eval, clipfss_train_decoder


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return VOCDataset(make_voc_like(tmp_path_factory.mktemp('sw') / 'sw', n=40, seed=1))

@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return str(write_tiny_checkpoints(tmp_path_factory.mktemp('bb'))['bundle'])

def eval_args(world, bundle, out):
    return ['--root', world.root, '--episodes', 6, '--method', 'piclip-vtp-pir', '--backbone', bundle, '--min-pixels', 300,
            '--img-size', 64, '--quiet', '--device', 'cpu', '--threads', 1, '--out', out]


def test_eval_records_precision_and_keys_resume_on_it(world, bundle, tmp_path):
    "bf16 and fp32 results say which ran; an fp32 checkpoint is not continued by a bf16 run."
    code, _, err = run(clipfss_eval, eval_args(world, bundle, tmp_path / 'fp32.json') + ['--precision', 'fp32'])
    assert code == 0, err
    eps = {0: episodes_from_tsv((tmp_path / 'fp32.json.episodes.seed0.tsv').read_text())}
    fp = {p: run_fingerprint(PriorMethod('vtp+pir', backbone=bundle, precision=p), world, eps, 0, 'hsnet', 64, BASELINES) for p in ('fp32', 'bf16')}
    assert fp['fp32'] != fp['bf16']
    out16 = tmp_path / 'bf16.json'  # a checkpoint of the fp32 run where the bf16 run writes: it must not be resumed
    Path(f'{out16}.ckpt.json').write_text(json.dumps(dict(fingerprint=fp['fp32'], seeds={}, elapsed=0.0, passes=0, resumed=False)))
    code, _, err = run(clipfss_eval, eval_args(world, bundle, out16) + ['--precision', 'bf16'])
    assert code == 0 and 'ignoring checkpoint' in err, err
    r32, r16 = (json.loads((tmp_path / f).read_text()) for f in ('fp32.json', 'bf16.json'))
    assert (r32['method']['precision'], r16['method']['precision']) == ('fp32', 'bf16')
    assert r16['timing']['resumed'] is False and r16['results']['per_seed']['0']['episodes'] == 6
    assert r32['episodes_sha256'] == r16['episodes_sha256']  # the same episodes, in another precision


@pytest.mark.parametrize('flags,text', [
    (['--precision', 'half'], "--precision 'half' is not one of auto, fp32, fp16, bf16; pass --precision fp16 or bf16"),
    (['--precision', 'BF16'], 'pass --precision bf16'),
    (['--preset', 'piclip-reference', '--precision', 'bf16'], 'runs in fp32 only: drop --precision bf16 (or pass --precision fp32)'),
    (['--preset', 'piclip-reference', '--precision', 'fp16'], 'runs in fp32 only: drop --precision fp16'),
], ids=['half', 'upper-case', 'preset-bf16', 'preset-fp16'])
def test_eval_refuses_bad_precision(world, bundle, tmp_path, flags, text):
    code, out, err = run(clipfss_eval, eval_args(world, bundle, tmp_path / 'r.json') + flags)
    assert code == 2 and text in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_reference_preset_runs_in_fp32(world, bundle, tmp_path):
    "--preset piclip-reference with --precision auto: fp32, whatever 'auto' would pick on this machine."
    code, _, err = run(clipfss_eval, eval_args(world, bundle, tmp_path / 'p.json') + ['--preset', 'piclip-reference'])
    assert code == 0, err
    assert json.loads((tmp_path / 'p.json').read_text())['method']['precision'] == 'fp32'
    with pytest.raises(ValueError, match='fp32 only'): PriorMethod(backbone=bundle, cfg=PriorConfig.reference(), precision='bf16')


def test_feature_cache_keys_differ_between_fp32_and_bf16(world):
    b32 = tiny_backbone(interpolation='bilinear')
    b16 = tiny_backbone(interpolation='bilinear'); set_precision(b16.clip, torch.bfloat16)
    extractors = [lambda b: PriorFeatures(b, world.class_names, PriorConfig(shots='mean')), lambda b: ProtoFeatures(b),
                  lambda b: CLIPSegFeatures(CLIPSeg(b, extract_layers=(0, 1, 2), reduce_dim=8, ff_dim=16, input_size=64, prompt_size=64))]
    for make in extractors:
        assert make(b32).fingerprint() != make(b16).fingerprint()
        assert FeatureStore(make(b32), world).key() != FeatureStore(make(b16), world).key()
        assert FeatureStore(make(b16), world).key() == FeatureStore(make(b16), world).key()


def test_train_decoder_with_bf16_clip(bundle, tmp_path):
    "The frozen CLIP in bf16, the decoder in fp32: the card records bf16, the cache file is the bf16 one."
    code, log, err = run(clipfss_train_decoder, ['--fold', 1, '--backbone', bundle, '--data-root', tmp_path / 'sw', '--n-train', 30,
                                                 '--n-val', 60, '--steps', 3, '--batch-size', 2, '--views', 1, '--dim', 8, '--eval-episodes', 4,
                                                 '--cache-dir', tmp_path / 'cache', '--checkpoint-dir', tmp_path / 'ckpt',
                                                 '--out', tmp_path / 'dec.safetensors', '--threads', 1, '--precision', 'bf16'])
    assert code == 0, err
    dec, card = load_prior_decoder(tmp_path / 'dec.safetensors')
    assert card['precision'] == 'bf16' and card['results']['episodes'] == 4
    assert {p.dtype for p in dec.parameters()} == {torch.float32}
    train = VOCDataset(tmp_path / 'sw', 'train')
    key = lambda p: FeatureStore(PriorFeatures(load_backbone(bundle, device='cpu', precision=p, interpolation='bilinear'), train.class_names,
                                               PriorConfig(shots='mean')), train, 1, 0).key()
    assert sorted(p.name for p in (tmp_path / 'cache').iterdir()) == [f'features-{key("bf16")}.safetensors']
    assert key('bf16') != key('fp32')
