"""Models: the registry (:mod:`.base`) and the built-in architectures, one per file.

Importing this package registers every built-in model (each member module is imported below):

- ``"mlp"``, ``"logreg"`` (:mod:`.mlp`): flat features;
- ``"cnn"`` (:mod:`.cnn`): a small CNN without batch norm;
- ``"resnet"`` (:mod:`.resnet`): a small ResNet with batch norm for Fashion-MNIST-sized images;
- ``"pkg.module:ClassName"``: a user's ``nn.Module`` (local runs only).
"""

from deai.learn.models import cnn, mlp, resnet  # noqa: F401  (registers the members)
from deai.learn.models.base import (
    MAX_DIM,
    MAX_KWARG_ITEMS,
    MAX_PARAMS,
    MODELS,
    build_model,
    check_model_kwargs,
    count_params,
)
from deai.learn.models.cnn import SmallCNN
from deai.learn.models.mlp import MLP, LogReg
from deai.learn.models.resnet import ResNet

__all__ = [
    "MAX_DIM",
    "MAX_KWARG_ITEMS",
    "MAX_PARAMS",
    "MLP",
    "MODELS",
    "LogReg",
    "ResNet",
    "SmallCNN",
    "build_model",
    "check_model_kwargs",
    "count_params",
]
