"""Models: the registry (:mod:`.base`) and the built-in architectures, one per file.

Importing this package registers every built-in model (each member module is imported below):

- ``"mlp"``, ``"logreg"`` (:mod:`.mlp`): flat features;
- ``"cnn"`` (:mod:`.cnn`): a small CNN without batch norm;
- ``"resnet"`` (:mod:`.resnet`): a small ResNet with batch norm for Fashion-MNIST-sized images;
- ``"gpt"`` (:mod:`.gpt`): a GPT-2-style decoder language model built from a config;
- ``"lora"`` (:mod:`.lora`): LoRA adapters (PEFT) on a named pretrained base (:mod:`deai.learn.pretrained`);
- ``"pkg.module:ClassName"``: a user's ``nn.Module`` (local runs only).
"""

from deai.learn.models import cnn, gpt, lora, mlp, resnet  # noqa: F401  (registers the members)
from deai.learn.models.base import (
    MAX_DIM,
    MAX_KWARG_ITEMS,
    MAX_PARAMS,
    MODELS,
    build_model,
    check_model_kwargs,
    count_params,
    count_state,
)
from deai.learn.models.cnn import SmallCNN
from deai.learn.models.gpt import GPT
from deai.learn.models.lora import LoRACausalLM, adapter_state, set_adapter_state
from deai.learn.models.mlp import MLP, LogReg
from deai.learn.models.resnet import ResNet

__all__ = [
    "GPT",
    "MAX_DIM",
    "MAX_KWARG_ITEMS",
    "MAX_PARAMS",
    "MLP",
    "MODELS",
    "LoRACausalLM",
    "LogReg",
    "ResNet",
    "SmallCNN",
    "adapter_state",
    "build_model",
    "check_model_kwargs",
    "count_params",
    "count_state",
    "set_adapter_state",
]
