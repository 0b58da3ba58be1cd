"""Re-execute notebooks in place so their stored outputs (figures, tables) show the present code and models.

    .venv/bin/python .ci/execute_notebooks.py nbs/04_vtp.ipynb nbs/05_vvp.ipynb [--flags slow]

Cells flagged `#| slow`, `#| cuda` or `#| notest` (unless named in --flags) and `#| eval: false` cells are not run
and keep the outputs they have, so a long training cell's recorded log survives a refresh of the figures around it.
Run `nbdev_clean` afterwards. Notebooks under `nbs/experiments/` keep their recorded outputs: rerun those by hand.
"""
import argparse, os, re, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

FLAGS = ('slow', 'cuda', 'notest')

def skipped(cell, flags) -> bool:
    "True for cells that must keep their recorded outputs."
    if cell.cell_type != 'code': return True
    directives = [l[3:].strip() for l in cell.source.splitlines() if l.startswith('#|')]
    if any(re.fullmatch(r'eval:\s*false', d) for d in directives): return True
    return any(d in FLAGS and d not in flags for d in directives)

def execute(path: Path, flags: tuple[str, ...]) -> float:
    nb = read_nb(path)
    shell = CaptureShell(path, mpl_format='png')  # figures stored at display size (the default 'retina' stores 4x the pixels)
    shell.set_path(path.parent.resolve())
    start = time.perf_counter()
    cwd = os.getcwd(); os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=lambda c: skipped(c, flags))
    finally: os.chdir(cwd)
    write_nb(nb, path)
    return time.perf_counter() - start

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--flags', nargs='*', default=(), help='test flags whose cells run too (slow, cuda)')
    args = p.parse_args()
    for nb in args.notebooks:
        print(f'{nb}: {execute(nb, tuple(args.flags)):.1f}s, {nb.stat().st_size / 1e3:.0f} KB', flush=True)
