"""Where a model runs and in what precision."""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """auto: CUDA, else Apple's MPS, else the CPU. Asking for one that is not here is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: Apple's Metal backend is not available here; use --device cpu or auto.")
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Does this CPU compute in bfloat16 natively (AVX512-BF16 or AMX)? Without it,
    oneDNN emulates bf16, and autocast is not expected to beat fp32."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except RuntimeError:
                pass
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def cpu_features() -> list[str]:
    """Which of AMX and AVX512-BF16 this CPU has, as /proc/cpuinfo names them: the
    CPU class a precision figure belongs to ([] for an fp32-only CPU)."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    amx = getattr(getattr(torch, "cpu", None), "_is_amx_tile_supported", None)
    found = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    if not found and amx is not None:
        try:
            found = ["amx_bf16"] if amx() else []
        except RuntimeError:
            pass
    return found


def cpu_class() -> str:
    """'AMX', 'AVX512-BF16' or 'fp32-only'."""
    f = cpu_features()
    return "AMX" if "amx_bf16" in f else "AVX512-BF16" if f else "fp32-only"


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if name == "fp32":
        return None
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16  # 1.1-1.8x the fp32 throughput here, by sequence length (bench/RESULTS.md)
        return None
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on this device.")
    return torch.bfloat16 if name == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[dtype]


@contextlib.contextmanager
def one_thread():
    """torch's intra-op work on one thread for the block, then as many as before. For work
    made of many tiny operations (a traced pass of one short text, step by step), where a
    second thread adds only a fork and a join to each, and waits on a busy machine for a core."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)
