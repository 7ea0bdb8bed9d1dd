"""modelscan settings with the aegis scanner enabled: as a Python dict (the programmatic route,
`ModelScan(settings=...)`) or as a TOML file for `modelscan --settings-file` (the command-line route).

modelscan 0.8.8's own TOML route is broken: `modelscan create-settings-file` fails ("Keys must be
strings": the format table is keyed by Python objects), and a hand-written file loses those objects, so
the built-in scanners fail on every pickle/PyTorch/Keras file. The TOML written here names a drop-in
middleware (`aegis_modelscan.FormatViaExtensionMiddleware`) that turns the string keys back into
modelscan's format objects, so the built-in scanners keep working beside the aegis scanner."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from modelscan.middlewares.format_via_extension import FormatViaExtensionMiddleware as _ModelscanFormatMiddleware
from modelscan.settings import DEFAULT_SETTINGS, Property, SupportedModelFormats

from .scanner import SCANNER_PATH

MODELSCAN_MIDDLEWARE = "modelscan.middlewares.FormatViaExtensionMiddleware"
MIDDLEWARE_PATH = "aegis_modelscan.FormatViaExtensionMiddleware"


def scanner_entry(
    data: str | os.PathLike[str],
    *,
    extra_args: Iterable[str] = (),
    binary: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    reports_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The aegis scanner's entry of settings["scanners"] (TOML-safe: unset values are "" or 0)."""
    return {
        "enabled": True,
        "supported_extensions": [".onnx"],
        "data": str(Path(data).absolute()),
        "extra_args": [str(a) for a in extra_args],
        "binary": str(binary) if binary else "",
        "timeout": float(timeout) if timeout else 0,
        "reports_dir": str(reports_dir) if reports_dir else "",
    }


def settings_with_aegis(
    data: str | os.PathLike[str], *, base: Mapping[str, Any] | None = None, **entry: Any
) -> dict[str, Any]:
    """A copy of modelscan's settings (DEFAULT_SETTINGS unless `base`) with the aegis scanner enabled;
    keyword arguments as `scanner_entry`."""
    settings = copy.deepcopy(dict(base if base is not None else DEFAULT_SETTINGS))
    settings["scanners"][SCANNER_PATH] = scanner_entry(data, **entry)
    return settings


def _format_key(key: Any) -> Any:
    return key.value if isinstance(key, Property) else key


def settings_toml(data: str | os.PathLike[str], **entry: Any) -> str:
    """A settings file for `modelscan --settings-file` with the built-in scanners and the aegis scanner."""
    settings = settings_with_aegis(data, **entry)
    middlewares = {}
    for path, params in settings["middlewares"].items():
        params = dict(params)
        if path == MODELSCAN_MIDDLEWARE:
            path = MIDDLEWARE_PATH
            params["formats"] = {_format_key(k): list(v) for k, v in params["formats"].items()}
        middlewares[path] = params
    settings["middlewares"] = middlewares
    header = "# modelscan settings with aegis-audit's backdoor scanner (written by aegis-modelscan)\n\n"
    return header + tomlkit.dumps(settings)


class FormatViaExtensionMiddleware(_ModelscanFormatMiddleware):
    """modelscan's format middleware, accepting the format names a TOML file can hold ("pytorch") as well
    as modelscan's own format objects."""

    def __init__(self, settings: dict[str, Any]) -> None:
        known = {p.value: p for p in vars(SupportedModelFormats).values() if isinstance(p, Property)}
        formats = {}
        for key, extensions in (settings.get("formats") or {}).items():
            if not isinstance(key, Property):
                key = known.get(str(key)) or Property(str(key).upper(), str(key))
            formats[key] = list(extensions)
        super().__init__({**settings, "formats": formats})
