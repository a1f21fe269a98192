"""The CUDA and MPS paths, covered on a machine without either: device choice,
autocast choice, and a checkpoint written on a GPU that opens and samples on a CPU."""

import pytest
import torch

from charrnn.runtime import hardware
from charrnn.training import checkpoint
from charrnn.cli import app
from charrnn.errors import ConfigError
from charrnn.runtime.hardware import pick_device, pick_precision


@pytest.fixture
def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, no_accelerators):
    assert pick_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda", 0)
    assert pick_device("auto", local_rank=3) == torch.device("cuda", 3)  # one GPU per torchrun process
    assert pick_device("cuda", local_rank=1) == torch.device("cuda", 1)


def test_asking_for_a_missing_device_is_a_clear_error(no_accelerators):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ConfigError, match="Metal"):
        pick_device("mps")


def test_autocast_choice(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert pick_precision("auto", cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert pick_precision("auto", cuda) is torch.float16  # older GPUs: fp16 with a GradScaler
    assert pick_precision("fp16", cuda) is torch.float16
    assert pick_precision("fp32", cuda) is None
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert pick_precision("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert pick_precision("auto", cpu) is None  # emulated bf16 is slower than fp32
    assert pick_precision("bf16", cpu) is torch.bfloat16  # asked for: given
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        pick_precision("fp16", cpu)


def test_native_bf16_detection_reads_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert hardware.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    assert not hardware.cpu_has_native_bf16()


def test_a_checkpoint_written_on_a_gpu_opens_and_samples_on_a_cpu(runner, workdir, corpus_file, no_accelerators):
    """Every storage in the file is tagged 'cuda:0', as a GPU run writes them; this
    machine has no CUDA, and the checkpoint must still load and sample."""
    from helpers import TINY

    r = runner.invoke(app, ["train", str(corpus_file), "--steps", "8", "--name", "g", "--quiet", *TINY])
    assert r.exit_code == 0, r.output
    path = workdir / "checkpoints" / "g" / "last.pt"
    ck = checkpoint.load(path)

    def tag_cuda(obj):
        return "cuda:0" if getattr(obj, "device", torch.device("cpu")).type == "cpu" else None

    torch.serialization.register_package(1, tag_cuda, lambda obj, location: None)
    try:
        torch.save(ck.to_dict(), path)
    finally:
        torch.serialization._package_registry[:] = [p for p in torch.serialization._package_registry if p[1] is not tag_cuda]
    assert b"cuda:0" in path.read_bytes()
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # what a naive load does here
    model, tok = checkpoint.model_from(checkpoint.load(path))
    assert next(model.parameters()).device.type == "cpu"
    s = runner.invoke(app, ["sample", "g", "--length", "20", "--seed", "1"])
    assert s.exit_code == 0 and len(s.stdout) == 21
