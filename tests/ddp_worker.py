"""Worker of tests/test_training_ddp.py: trains a toy head with `train_episodic` under a launcher and writes this
rank's final weights and the episodes it took (run with `accelerate launch --multi_gpu --num_processes 2` on CPU)."""
import json, sys
from pathlib import Path
import torch
import torch.nn as nn
from clipfss_nb.training import TrainConfig, TrainEpisodes, train_episodic, make_accelerator
from safetensors.torch import save_file

class Toy(nn.Module):
    "A linear head on per-episode random features: enough to see gradients synchronised."
    def __init__(self):
        super().__init__(); self.lin = nn.Linear(4, 1)
    def forward(self, batch): return dict(loss=(self.lin(batch['x']) - batch['y']).pow(2).mean())

out = Path(sys.argv[1])
acc = make_accelerator()  # what the console scripts use: gloo CPU processes under the launcher
pairs = tuple((f'im{i}', 1 + i % 3) for i in range(30))
pools = {c: [i for i, cc in pairs if cc == c] for c in (1, 2, 3)}
episodes = TrainEpisodes(pairs, pools, shots=1, seed=5)
seen = []
def make_batch(eps):
    seen.extend([e.query[0] for e in eps])
    g = torch.Generator().manual_seed(sum(int(e.query[0][2:]) for e in eps))
    x = torch.randn(len(eps), 4, generator=g)
    return dict(x=x, y=x.sum(1, keepdim=True))
torch.manual_seed(0)
model = Toy()
train_episodic(model, make_batch, episodes, TrainConfig(steps=3, batch_size=2, lr=0.1, log_every=1), accelerator=acc,
               out=out / 'ckpt' if acc.is_main_process else None, progress=False)
save_file(model.state_dict(), str(out / f'rank{acc.process_index}.safetensors'))
(out / f'rank{acc.process_index}.json').write_text(json.dumps(dict(world=acc.num_processes, seen=seen)))
