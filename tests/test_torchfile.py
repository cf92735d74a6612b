"""Reading PyTorch files without torch: safety first, then exact round trips (torch only writes the files)."""
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from tinygan import torchfile


class SystemCall:
    """Unpickling this calls os.system(command): what a malicious checkpoint would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def malicious_pickle(sentinel):
    return pickle.dumps({"weight": SystemCall(f"touch {sentinel}")}, protocol=2)


def test_refuses_a_global_in_a_legacy_file_and_never_runs_it(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(malicious_pickle(sentinel))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global '(posix|os|nt)\.system'"):
        torchfile.load(path)
    assert not sentinel.exists()


def test_refuses_a_global_in_a_zip_file_and_never_runs_it(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", malicious_pickle(sentinel))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        torchfile.load(path)
    assert not sentinel.exists()


def test_refuses_builtins_eval_too():
    payload = b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."    # eval("1+1")
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        torchfile.RestrictedUnpickler(io.BytesIO(payload)).load()


def test_tensor_views_stay_inside_their_storage():
    storage = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(torchfile._rebuild_tensor_v2(storage, 1, (2, 2), (3, 1)), [[1, 2], [4, 5]])
    with pytest.raises(pickle.UnpicklingError, match="reads element 6"):
        torchfile._rebuild_tensor_v2(storage, 2, (2, 2), (3, 1))
    with pytest.raises(pickle.UnpicklingError, match="bad tensor layout"):
        torchfile._rebuild_tensor_v2(storage, 0, (2,), (-1,))


def test_missing_and_non_torch_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        torchfile.load(tmp_path / "nope.pt")
    path = tmp_path / "number.pkl"
    path.write_bytes(pickle.dumps(42, protocol=2))
    with pytest.raises(ValueError, match="magic number 42"):
        torchfile.load(path)


def torch_state():
    """Tensors torch stores in awkward ways: transposed, sliced (offset), shared storage, many dtypes."""
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(5, 6, generator=gen)
    return OrderedDict([
        ("float32", torch.randn(3, 4, generator=gen)),
        ("transposed", base.t()),                          # non-contiguous strides (1, 6)
        ("offset_slice", base[2:, 1:4]),                   # storage offset 13, row stride 6
        ("every_other", torch.arange(20, dtype=torch.int64)[3::2]),
        ("float16", torch.randn(2, 3, generator=gen).half()),
        ("float64", torch.randn(4, generator=gen, dtype=torch.float64)),
        ("bfloat16", torch.randn(3, generator=gen).bfloat16()),
        ("int64", torch.tensor([-(2 ** 40), 0, 7])),
        ("bool", torch.tensor([True, False, True])),
        ("uint8", torch.arange(250, 256, dtype=torch.uint8)),
        ("scalar", torch.tensor(3.5)),
        ("empty", torch.zeros(0, 3)),
        ("parameter", torch.nn.Parameter(torch.ones(2, 2))),
        ("nested", {"list": [torch.ones(1), torch.zeros(2)], "step": 7}),
    ])


def as_numpy(tensor):
    import torch
    tensor = tensor.detach()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_round_trip_of_a_torch_saved_state(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    state = torch_state()
    path = tmp_path / "state.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    loaded = torchfile.load(path)
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        if key == "nested":
            continue
        assert loaded[key].dtype == as_numpy(tensor).dtype, key
        np.testing.assert_array_equal(loaded[key], as_numpy(tensor), err_msg=key)
    assert loaded["nested"]["step"] == 7
    np.testing.assert_array_equal(loaded["nested"]["list"][1], np.zeros(2, np.float32))
    # Tensors that share a storage in the file share memory here, as in torch.
    assert np.shares_memory(loaded["transposed"], loaded["offset_slice"])
    flat = torchfile.load_state_dict(path)
    assert "nested.list.0" in flat and flat["transposed"].flags.c_contiguous


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # torch.jit is deprecated, its files are not
def test_reads_a_torchscript_module(tmp_path):
    torch = pytest.importorskip("torch")

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, (1, 3), padding=(0, 1))
            self.bn = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    module = torch.nn.Sequential(Block(), torch.nn.ReLU()).eval()
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    tree = torchfile.load(path)
    assert isinstance(tree, torchfile.TorchScriptObject)
    assert tree.qualified_name.startswith("__torch__.")
    flat = torchfile.load_state_dict(path)
    for key, tensor in module.state_dict().items():
        np.testing.assert_array_equal(flat[key], tensor.numpy(), err_msg=key)
