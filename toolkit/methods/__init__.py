"""Methods behind a registry: ``list_methods()``, ``create_method(name, **params)``.

Every module in this package registers its method when imported; all are imported here, so
adding a method is adding one file.
"""

import importlib
import pkgutil

from toolkit.methods.base import (
    METHODS,
    AutoencoderMethod,
    Method,
    Setting,
    all_settings,
    create_method,
    get_method,
    list_methods,
    method_from_config,
    register_method,
)

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base" and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "METHODS",
    "AutoencoderMethod",
    "Method",
    "Setting",
    "all_settings",
    "create_method",
    "get_method",
    "list_methods",
    "method_from_config",
    "register_method",
]
