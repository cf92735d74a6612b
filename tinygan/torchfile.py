"""Read PyTorch checkpoint files with zipfile, pickle and NumPy: no torch needed.

A ``.pt``/``.pth`` file is a Python pickle whose tensors point at raw storage
bytes kept next to it. Two layouts exist:

* **zip** (``torch.save`` since 1.6, and TorchScript ``torch.jit.save``)::

      archive/data.pkl      the pickled object
      archive/data/0        raw bytes of storage "0"
      archive/data/1        ...
      archive/byteorder     "little" or "big" (absent in old files: little)

* **legacy** (``torch.save(..., _use_new_zipfile_serialization=False)``, and
  every file written before torch 1.6, e.g. pytorch-fid's Inception weights).
  One stream of consecutive pickles, then the storages::

      pickle(MAGIC_NUMBER) pickle(PROTOCOL_VERSION) pickle(sys_info)
      pickle(object) pickle([storage keys, sorted])
      for each key: int64 element count, then the raw bytes

A tensor is pickled as ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``
and its storage as a *persistent id* ``('storage', FloatStorage, key, device,
numel)``. Here a storage becomes a 1-D NumPy array and a tensor becomes a view
of it with the saved strides (in elements)::

    tensor[i0, i1, ...] = storage[offset + i0*stride0 + i1*stride1 + ...]

so tensors that share a storage in the file share memory here, as in torch.

**Safety.** Unpickling can call any importable function, so a malicious file
could run ``os.system``. The unpickler below only resolves the few globals a
checkpoint needs, each mapped to a small local stand-in; any other global
raises ``pickle.UnpicklingError`` naming it, before anything is called.
TorchScript classes (``__torch__.*``) never import anything: they become
:class:`TorchScriptObject` records holding their attributes.
"""
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage class name -> NumPy dtype of one element (little-endian here;
# big-endian files are handled by swapping the byte order below).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,   # no bfloat16 in NumPy: widened to float32 below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only remembers the element dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])

    def __repr__(self):
        return f"StorageType({self.name})"


class TorchScriptObject:
    """A TorchScript module or object from ``data.pkl``, as plain data.

    ``qualified_name`` is the class name in the file (``__torch__.inceptionv3.Conv2dLayer``)
    and ``state`` the dict of its attributes: tensors (NumPy arrays), ints, child objects.
    Its code is never run; the graph lives in the archive's ``code/`` folder as text.
    """

    qualified_name = "__torch__"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f"TorchScript object {self.qualified_name}: expected a dict of attributes, "
                f"got {type(state).__name__}")
        self.state = state

    def __repr__(self):
        return f"TorchScriptObject({self.qualified_name}, keys={list(getattr(self, 'state', {}))})"


_script_classes = {}


def _script_class(qualified_name):
    """One local subclass of TorchScriptObject per TorchScript class name (never imported)."""
    if qualified_name not in _script_classes:
        _script_classes[qualified_name] = type(
            qualified_name.rsplit(".", 1)[-1], (TorchScriptObject,), {"qualified_name": qualified_name})
    return _script_classes[qualified_name]


def _strided_view(storage, storage_offset, size, stride):
    """The tensor ``storage[offset + sum(i_k * stride_k)]`` of shape ``size``, checked to stay in bounds."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or storage_offset < 0:
        raise pickle.UnpicklingError(
            f"bad tensor layout: offset {storage_offset}, size {size}, stride {stride}")
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"tensor of size {size}, stride {stride}, offset {storage_offset} reads element {last}, "
            f"but its storage holds {storage.size} elements")
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(s * item for s in stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _strided_view(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _build_list(items):
    return list(items)


# (module, name) -> the harmless local object that stands in for it.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.jit._pickle", "build_intlist"): _build_list,
    ("torch.jit._pickle", "build_doublelist"): _build_list,
    ("torch.jit._pickle", "build_boollist"): _build_list,
    ("torch.jit._pickle", "build_tensorlist"): _build_list,
}
SAFE_GLOBALS.update({("torch", name): StorageType(name) for name in STORAGE_DTYPES})


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only SAFE_GLOBALS and ``__torch__.*`` records.

    ``load_storage(storage_type, key, numel)`` turns a persistent id into a 1-D array.
    """

    def __init__(self, file, load_storage=None):
        super().__init__(file)
        self.load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        if module == "__torch__" or module.startswith("__torch__."):
            return _script_class(f"{module}.{name}")
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': tinygan.torchfile only allows tensors, "
            f"storages, OrderedDict and TorchScript records ({len(SAFE_GLOBALS)} known globals)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}; expected ('storage', ...)")
        if self.load_storage is None:
            raise pickle.UnpicklingError("this pickle refers to tensor storages but none can be read here")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"storage {key!r} has unsupported type {storage_type!r}; "
                                         f"expected one of {sorted(STORAGE_DTYPES)}")
        storage = self.load_storage(storage_type, str(key), int(numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:   # legacy files from torch < 1.0: a view (key, offset, size) of a storage
            _view_key, offset, view_size = view
            storage = storage[int(offset):int(offset) + int(view_size)]
        return storage


def _bytes_to_storage(raw, storage_type, numel, byteorder, where):
    dtype = storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
    if len(raw) < numel * dtype.itemsize:
        raise pickle.UnpicklingError(f"{where}: storage has {len(raw)} bytes, expected "
                                     f"{numel} x {dtype.itemsize} ({storage_type.name})")
    array = np.frombuffer(raw, dtype=dtype, count=numel).astype(storage_type.dtype.newbyteorder("="))
    if storage_type.name == "BFloat16Storage":  # bfloat16 is the top half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one '<archive>/data.pkl' in the zip, found {pickles}")
        prefix = pickles[0][:-len("data.pkl")]
        names = set(archive.namelist())
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
        storages = {}

        def load_storage(storage_type, key, numel):
            if key not in storages:
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise pickle.UnpicklingError(f"{path}: storage record {member!r} is missing")
                storages[key] = _bytes_to_storage(archive.read(member), storage_type, numel,
                                                  byteorder, f"{path}:{member}")
            return storages[key]

        return RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _load_legacy(path):
    with open(path, "rb") as f:
        header = RestrictedUnpickler(f)
        magic = header.load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path}: not a torch file (magic number {magic!r}, expected "
                             f"{LEGACY_MAGIC_NUMBER:#x}); tar files from torch < 0.4 are not supported")
        protocol = RestrictedUnpickler(f).load()
        if protocol != LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"{path}: legacy protocol {protocol!r}, expected {LEGACY_PROTOCOL_VERSION}")
        sys_info = RestrictedUnpickler(f).load()
        byteorder = "little" if sys_info.get("little_endian", True) else "big"
        storages = {}   # key -> (storage_type, array to fill once the bytes are reached)

        def load_storage(storage_type, key, numel):
            if key not in storages:
                dtype = np.float32 if storage_type.name == "BFloat16Storage" else storage_type.dtype
                storages[key] = (storage_type, np.zeros(numel, dtype=dtype))
            return storages[key][1]

        obj = RestrictedUnpickler(f, load_storage).load()
        keys = RestrictedUnpickler(f).load()
        for key in keys:
            if key not in storages:
                raise pickle.UnpicklingError(f"{path}: storage {key!r} is listed but never used")
            storage_type, array = storages[key]
            (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", f.read(8))
            if numel != array.size:
                raise pickle.UnpicklingError(f"{path}: storage {key!r} has {numel} elements on disk, "
                                             f"the pickle said {array.size}")
            raw = f.read(numel * storage_type.dtype.itemsize)
            array[...] = _bytes_to_storage(raw, storage_type, numel, byteorder, f"{path}:storage {key}")
        return obj


def load(path):
    """Unpickle a torch file (zip or legacy) into Python objects with NumPy arrays for tensors.

    A state dict comes back as an OrderedDict of arrays; a TorchScript module as a
    tree of :class:`TorchScriptObject`. Arrays keep the saved dtype (bfloat16 -> float32).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"torch file {path} does not exist")
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path)


def flatten(obj, prefix=""):
    """Name every array in a loaded tree PyTorch-style: ``{'layers.conv.weight': array, ...}``.

    Dicts and TorchScript records contribute their keys, lists and tuples their indices.
    """
    if isinstance(obj, np.ndarray):
        return OrderedDict([(prefix[:-1], obj)])
    if isinstance(obj, TorchScriptObject):
        obj = getattr(obj, "state", {})
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return OrderedDict()
    flat = OrderedDict()
    for key, value in items:
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def load_state_dict(path):
    """All tensors of a torch file by dotted name, as NumPy arrays (contiguous copies)."""
    return OrderedDict((k, np.ascontiguousarray(v)) for k, v in flatten(load(path)).items())
