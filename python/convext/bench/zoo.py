"""``--zoo``: every distinct conv layer of the benchmark's models, plus two families they lack.

The layer list is read off the models of :mod:`convext.bench.models` (one
forward on the meta device, so it always matches them), then extended with

* Inception-v3's factorised 7x7 convolutions (Szegedy et al. 2015, the 17x17
  "Mixed_6b-e" and "Mixed_7a" modules: 1x7 and 7x1 on 768-channel input
  reduced to c7 = 128, 160 or 192 channels, padding (0, 3) / (3, 0)), and
* DeepLab-style atrous 3x3 convolutions (dilation 2, padding 2; Chen et al.
  2017: a ResNet-50's third stage at output stride 8 and its fourth at 16).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from convext.bench.suite import ConvSpec, pair

__all__ = ["EXTRA_FAMILIES", "zoo_sources", "extra_layers", "zoo_layers", "zoo_specs", "layer_name"]

EXTRA_FAMILIES = ("inception_v3", "deeplab")


def _layer(c: int, h: int, k: int, r: int, s: int, padding: Any, dilation: int = 1) -> dict[str, Any]:
    return {"C": c, "H": h, "W": h, "K": k, "R": r, "S": s, "stride": [1, 1],
            "padding": list(pair(padding)), "dilation": [dilation, dilation], "groups": 1,
            "bias": False}


def extra_layers(family: str) -> list[dict[str, Any]]:
    """The layers of an extra family, in the format of :func:`convext.bench.models.conv_layers`.

    Parameters
    ----------
    family : str
        ``inception_v3`` or ``deeplab``.

    Returns
    -------
    list of dict

    Raises
    ------
    KeyError
        For another name.
    """
    if family == "inception_v3":
        layers = []
        for c7 in (128, 160, 192):
            # branch7x7: 1x7 c7->c7, 7x1 c7->192; branch7x7dbl: 7x1 c7->c7, 1x7 c7->c7, ..., 1x7 c7->192
            layers += [_layer(c7, 17, c7, 1, 7, (0, 3)), _layer(c7, 17, 192, 7, 1, (3, 0)),
                       _layer(c7, 17, c7, 7, 1, (3, 0)), _layer(c7, 17, 192, 1, 7, (0, 3))]
        return layers
    if family == "deeplab":
        return [_layer(256, 28, 256, 3, 3, 2, dilation=2), _layer(512, 14, 512, 3, 3, 2, dilation=2)]
    raise KeyError(f"bench: unknown layer family {family!r}; known: {', '.join(EXTRA_FAMILIES)}")


def zoo_sources() -> tuple[str, ...]:
    """Every name ``--zoo`` accepts: the models, then the extra families."""
    from convext.bench.models import MODELS

    return (*MODELS, *EXTRA_FAMILIES)


def layer_name(layer: dict[str, Any]) -> str:
    """A readable name: kernel, stride, dilation, depthwise/groups, channels, input size.

    Parameters
    ----------
    layer : dict
        A layer as :func:`convext.bench.models.conv_layers` gives it.

    Returns
    -------
    str
        E.g. ``3x3_c64_k64_56``, ``dw3x3s2_c96_112``, ``1x7_c128_k192_17``,
        ``3x3d2_c256_k256_28``.
    """
    (sh, sw), (dh, dw) = layer["stride"], layer["dilation"]
    name = f"{layer['R']}x{layer['S']}"
    name += "" if (sh, sw) == (1, 1) else (f"s{sh}" if sh == sw else f"s{sh}x{sw}")
    name += "" if (dh, dw) == (1, 1) else (f"d{dh}" if dh == dw else f"d{dh}x{dw}")
    g, c, k = layer["groups"], layer["C"], layer["K"]
    if g > 1 and g == c == k:
        name = f"dw{name}_c{c}"
    else:
        name += f"_c{c}_k{k}" + (f"_g{g}" if g > 1 else "")
    hw = f"{layer['H']}" if layer["H"] == layer["W"] else f"{layer['H']}x{layer['W']}"
    return f"{name}_{hw}"


def _key(layer: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(layer.items()))


def zoo_layers(sources: Iterable[str], image_size: int = 224) -> list[dict[str, Any]]:
    """The distinct conv layers of the named models and families (needs torch for models).

    Parameters
    ----------
    sources : iterable of str
        Model names (:data:`convext.bench.models.MODELS`) and extra families.
    image_size : int, optional
        Input height and width of the models.

    Returns
    -------
    list of dict
        One per distinct geometry (input channels and size, filters, kernel,
        stride, padding, dilation, groups, bias), in first-seen order, each
        with ``name`` (unique), ``models`` (the sources that have it) and
        ``count`` (how many layers of those sources have it).
    """
    distinct: dict[tuple[Any, ...], dict[str, Any]] = {}
    for source in sources:
        if source in EXTRA_FAMILIES:
            layers = extra_layers(source)
        else:
            from convext.bench.models import build_model, conv_layers

            layers = conv_layers(build_model(source, device="meta"), image_size)
        for layer in layers:
            entry = distinct.setdefault(_key(layer), {**layer, "models": [], "count": 0})
            entry["count"] += 1
            if source not in entry["models"]:
                entry["models"].append(source)
    names: dict[str, int] = {}
    out = []
    for entry in distinct.values():
        base = layer_name(entry)
        names[base] = names.get(base, 0) + 1
        entry["name"] = base if names[base] == 1 else f"{base}_{names[base]}"
        out.append(entry)
    return out


def zoo_specs(
    layers: Sequence[dict[str, Any]], batches: Sequence[int]
) -> list[tuple[ConvSpec, dict[str, Any]]]:
    """One spec per layer and batch (named ``<layer>_b<N>``), with its layer.

    Parameters
    ----------
    layers : sequence of dict
        Output of :func:`zoo_layers`.
    batches : sequence of int

    Returns
    -------
    list of (ConvSpec, dict)
        Batch-major: every layer at the first batch, then at the next.
    """
    specs = []
    for n in batches:
        for layer in layers:
            row = {**layer, "name": f"{layer['name']}_b{n}", "N": n}
            specs.append((ConvSpec.from_row(row), layer))
    return specs
