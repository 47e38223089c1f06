import pytest
import torch

from traincore import DeviceError, resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_environment_overrides_auto_only(monkeypatch):
    monkeypatch.setenv("TRAINCORE_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setenv("TRAINCORE_DEVICE", "tpu")
    with pytest.raises(DeviceError, match="environment variable TRAINCORE_DEVICE"):
        resolve_device("auto")
    assert resolve_device("cpu") == torch.device("cpu")  # explicit wins over the environment


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "", "cpu:0"])
def test_malformed(bad):
    with pytest.raises(DeviceError, match="must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(bad)


def test_wrong_type():
    with pytest.raises(DeviceError, match="got int 3"):
        resolve_device(3)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_missing_is_an_error_not_a_fallback():
    with pytest.raises(DeviceError, match="CUDA is not available.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_range():
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_cpu_threads_restores_even_on_error():
    from traincore import cpu_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with cpu_threads(1, device="cuda:0"):  # GPU work: threads untouched
        assert torch.get_num_threads() == before
