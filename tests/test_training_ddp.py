"The episodic loop on two CPU processes (gloo): DDP keeps the replicas identical, each process takes its own episodes."
import json, os, socket, subprocess, sys
from pathlib import Path
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_two_processes_train_identical_replicas(tmp_path):
    launcher = Path(sys.executable).parent / 'accelerate'
    cmd = [str(launcher), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_ip', '127.0.0.1', '--main_process_port', str(_free_port()),
           str(HERE / 'ddp_worker.py'), str(tmp_path)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    w0, w1 = (load_file(str(tmp_path / f'rank{r}.safetensors')) for r in (0, 1))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # gradients were averaged: one model on both ranks
    r0, r1 = (json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1))
    assert r0['world'] == r1['world'] == 2
    assert len(r0['seen']) == len(r1['seen']) == 3 * 2 and r0['seen'] != r1['seen']  # each rank its own share of the stream
    record = json.loads((tmp_path / 'ckpt' / 'checkpoint.json').read_text())
    assert record['processes'] == 2 and record['step'] == 3
    assert all(torch.equal(v, w0[k]) for k, v in load_file(str(tmp_path / 'ckpt' / 'model.safetensors')).items())
