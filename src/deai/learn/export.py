"""Export a trained model as a folder that loads outside deai, and read deai's own format back.

:func:`export_model` writes, by the kind of model:

- :class:`~deai.learn.models.gpt.GPT`: a Hugging Face model folder (``config.json``,
  ``model.safetensors``, ``generation_config.json``); load it with
  ``transformers.AutoModelForCausalLM.from_pretrained(out_dir)``.
- :class:`~deai.learn.models.lora.LoRACausalLM`: a PEFT adapter folder (``adapter_config.json``,
  ``adapter_model.safetensors``; only the adapters, a few MB); load it onto the base with
  ``peft.PeftModel.from_pretrained(base_model, out_dir)``. ``adapter_config.json`` names the base by
  its deai name (``base_model_name_or_path``); the base's weights are not copied.
- any other model: ``model.safetensors`` (its ``state_dict``) and a ``config.json`` naming the deai
  model (``{"format": "deai-model/1", "model": name, "in_features": F, "num_classes": C,
  "model_kwargs": {...}, "preprocessing": {...}, "feature_shape": [...]}``), which
  :func:`load_exported` rebuilds. Pass that description as ``spec`` (:class:`ExportSpec`): a built
  model does not remember the arguments it was built with.

With ``spec``, every kind of folder also says how to feed the model: ``deai.json`` (the same
description; for the deai format it is ``config.json`` itself) holds the architecture and the
task's :class:`~deai.learn.preprocess.Preprocessing`, which raw inputs go through before the model
sees them. :func:`read_export` reads it back::

    described = read_export(folder)
    model = load_exported(folder)
    logits = model(described.preprocessing.transform(raw_x))

With ``tokenizer`` (a ``transformers`` or ``tokenizers`` tokenizer, or one of
:mod:`deai.learn.text`'s: ``ByteTokenizer`` is written as an equivalent byte-level BPE whose ids are
the UTF-8 bytes) its files are written beside the model, so ``AutoTokenizer.from_pretrained(out_dir)``
loads it too and gives the ids the model was trained on.
Weights are always safetensors: nothing is pickled, nothing is unpickled on load.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from deai.learn.errors import DataError, ModelError
from deai.learn.models.base import build_model
from deai.learn.models.gpt import GPT
from deai.learn.models.lora import LoRACausalLM
from deai.learn.preprocess import Preprocessing
from deai.learn.text import BPETokenizer, ByteTokenizer, HFTokenizer

__all__ = ["EXPORT_FORMAT", "ExportSpec", "export_model", "load_exported", "read_export"]

EXPORT_FORMAT = "deai-model/1"
_MAX_CONFIG = 1 << 20  # a deai config.json: a name, two numbers, short kwargs, per-feature statistics
_SIDECAR = "deai.json"  # the description beside a Hugging Face or PEFT folder


@dataclass(frozen=True)
class ExportSpec:
    """How a registry model was built (``build_model(model, in_features, num_classes,
    **model_kwargs)``), what its inputs go through (``preprocessing``) and the shape of one raw
    sample (``feature_shape``; empty if unknown)."""

    model: str
    in_features: int
    num_classes: int
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    feature_shape: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "model": self.model,
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "model_kwargs": dict(self.model_kwargs),
            "preprocessing": self.preprocessing.to_json(),
            "feature_shape": list(self.feature_shape),
        }


def _byte_level_tokenizer() -> Any:
    """A ``tokenizers.Tokenizer`` whose ids are the UTF-8 bytes (what :class:`ByteTokenizer`
    gives): a BPE with the 256 byte symbols of GPT-2's byte-level alphabet and no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    # GPT-2's byte -> printable character table: printable Latin-1 bytes map to themselves, the
    # others to 256, 257, ... in byte order (what pre_tokenizers.ByteLevel produces).
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    chars = {b: chr(b) for b in kept}
    for i, b in enumerate(b for b in range(256) if b not in chars):
        chars[b] = chr(256 + i)
    tok = Tokenizer(models.BPE(vocab={chars[b]: b for b in range(256)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def _save_tokenizer(tokenizer: object, out: Path) -> None:
    from tokenizers import Tokenizer

    if isinstance(tokenizer, ByteTokenizer):
        tokenizer = _byte_level_tokenizer()
    elif isinstance(tokenizer, BPETokenizer | HFTokenizer):
        tokenizer = tokenizer.tokenizer  # deai's wrappers hold a Hugging Face tokenizer
    if isinstance(tokenizer, Tokenizer):
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    save = getattr(tokenizer, "save_pretrained", None)
    if save is None:
        raise ModelError(f"cannot export a tokenizer of type {type(tokenizer).__name__}")
    save(str(out))


def export_model(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    *,
    tokenizer: object | None = None,
    spec: ExportSpec | None = None,
) -> Path:
    """Write ``model`` to ``out_dir`` (created if needed) in the format of its kind (see the module
    docstring) and return the folder. ``spec`` is needed for models other than GPT and LoRA."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if isinstance(model, GPT):
        model.net.save_pretrained(str(out), safe_serialization=True)
    elif isinstance(model, LoRACausalLM):
        # The base is frozen and named, so its embeddings are never copied; PEFT's "auto" would
        # look the name up as a Hugging Face Hub repository.
        model.peft.save_pretrained(str(out), safe_serialization=True, save_embedding_layers=False)
    else:
        if spec is None:
            raise ModelError(
                f"exporting a {type(model).__name__} needs spec=ExportSpec(model, in_features, num_classes,"
                " model_kwargs): the model does not remember how it was built"
            )
        from safetensors.torch import save_model

        # save_model (not save_file) drops the duplicates of shared tensors, which save_file refuses.
        save_model(model, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(spec.to_json(), indent=1, sort_keys=True) + "\n")
    if spec is not None and isinstance(model, GPT | LoRACausalLM):
        (out / _SIDECAR).write_text(json.dumps(spec.to_json(), indent=1, sort_keys=True) + "\n")
    if tokenizer is not None:
        _save_tokenizer(tokenizer, out)
    return out


def read_export(out_dir: str | os.PathLike[str]) -> ExportSpec:
    """The description of an exported folder: its ``config.json`` (deai format) or ``deai.json``
    (beside a Hugging Face or PEFT model): architecture, preprocessing and sample shape. The folder
    may come from another party: sizes, types and the statistics are checked."""
    out = Path(out_dir)
    return _read_spec(out, _SIDECAR if (out / _SIDECAR).is_file() else "config.json")


def _read_spec(out: Path, file: str = "config.json") -> ExportSpec:
    path = out / file
    if not path.is_file():
        raise ModelError(f"{out} holds no {file}")
    if path.stat().st_size > _MAX_CONFIG:
        raise ModelError(f"{path} is larger than {_MAX_CONFIG} bytes")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda c: math.nan)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != EXPORT_FORMAT:
        raise ModelError(
            f"{path} is not a deai export ({EXPORT_FORMAT}); a Hugging Face folder loads with from_pretrained"
        )
    name, f, c, kw = (raw.get(k) for k in ("model", "in_features", "num_classes", "model_kwargs"))
    if (
        not isinstance(name, str)
        or not isinstance(f, int)
        or not isinstance(c, int)
        or not isinstance(kw, dict)
    ):
        raise ModelError(
            f"{path}: model must be a name, in_features and num_classes integers, model_kwargs an object"
        )
    shape = raw.get("feature_shape", [])
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ModelError(f"{path}: feature_shape must be a list of at most 8 positive integers")
    try:
        prep = Preprocessing.from_json(raw.get("preprocessing", {"kind": "none"}))
        prep.check(f)
    except (DataError, TypeError) as exc:
        raise ModelError(f"{path}: {exc}") from None
    return ExportSpec(name, f, c, kw, prep, tuple(shape))


def load_exported(out_dir: str | os.PathLike[str], *, allow_import_path: bool = False) -> nn.Module:
    """Rebuild a model written by :func:`export_model` in deai's own format (``config.json`` with
    ``"format": "deai-model/1"``) and load its weights (strictly: every tensor, same shapes).

    The folder may come from another party: its model arguments go through
    :func:`~deai.learn.models.base.build_model`'s checks and size limit before anything is
    allocated, and a ``"pkg.module:Class"`` model (which would import code the folder names) is
    refused unless ``allow_import_path``."""
    out = Path(out_dir)
    spec = _read_spec(out)
    if ":" in spec.model and not allow_import_path:
        raise ModelError(
            f"{out} names the import path {spec.model[:80]!r}; pass allow_import_path=True to trust it"
        )
    model = build_model(spec.model, spec.in_features, spec.num_classes, seed=0, **spec.model_kwargs)
    weights = out / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{out} holds no model.safetensors")
    expected = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if weights.stat().st_size > expected + (1 << 20):  # the header: names, dtypes, shapes
        raise ModelError(f"{weights} is larger than the weights of {spec.model!r} ({expected} bytes)")
    from safetensors.torch import load_model

    try:
        load_model(model, str(weights), strict=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"{weights} does not fit model {spec.model!r}: {exc}") from exc
    return model.eval()
