"""The model zoo: one architecture per module; importing them registers their builders.

``get_model("vgg16_bn", num_classes=10, act="mish")`` builds any of ``list_models()``.
"""

from . import mlp, resnet, shufflenetv2, simple_cnn, squeezenet, vgg, xresnet  # noqa: F401  (registers)
from .layers import ActSpec, ConvBnAct
from .registry import get_model, list_models, register_model

__all__ = ["ActSpec", "ConvBnAct", "get_model", "list_models", "register_model"]
