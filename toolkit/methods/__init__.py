"""Methods behind a registry: ``list_methods()``, ``create_method(name, **params)``."""

from toolkit.methods import adnl, ae, baseline  # noqa: F401  (registration side effect)
from toolkit.methods.base import (
    AutoencoderMethod,
    create_method,
    get_method,
    list_methods,
    register_method,
)

__all__ = [
    "AutoencoderMethod",
    "create_method",
    "get_method",
    "list_methods",
    "register_method",
]
