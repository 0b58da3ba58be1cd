"""What the benchmarks print about the machine they ran on: CPU model, the SIMD flags that decide bf16 speed, threads, torch."""
import platform
from pathlib import Path
import torch
from clipfss_nb.core import cpu_bf16_speedup, compute_dtype, precision_name

SIMD_FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_tile')


def cpu_description() -> str:
    "One line: CPU model, which of `SIMD_FLAGS` it reports, torch threads and version."
    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').is_file() else ''
    model = next((l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith('model name')), platform.processor() or '?')
    flags = set(next((l.split(':', 1)[1].split() for l in info.splitlines() if l.startswith('flags')), []))
    have = [f for f in SIMD_FLAGS if f in flags]
    lacks = [f for f in SIMD_FLAGS if f not in flags]
    return (f"{model} | flags: {' '.join(have) or '-'} (lacks: {' '.join(lacks) or '-'}) | torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads | bf16/fp32 matmul {cpu_bf16_speedup():.2f}x → precision='auto' is "
            f"{precision_name(compute_dtype('cpu', 'auto'))}")
