"""Five CNNs in plain ``torch.nn``, from their papers' layer tables (needs torch).

torchvision cannot be installed beside the project's torch, so the models are
written out here with torchvision's layer layout (same parameter counts, so
the same layers): ResNet-18 and ResNet-50 (He et al. 2015, Table 1; the
stride of a bottleneck on its 3x3 conv, "v1.5"), MobileNetV2 (Sandler et al.
2018, Table 2), VGG-11 (Simonyan & Zisserman 2014, configuration A, no batch
norm) and DenseNet-121 (Huang et al. 2017, Table 1; growth 32, bottleneck
width 4 x 32, compression 0.5).  Weights are random: the benchmark times the
computation, not a trained network.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

__all__ = [
    "MODELS",
    "DEFAULT_MODES",
    "MODEL_TOLERANCE",
    "parse_mode",
    "model_cases",
    "build_model",
    "count_parameters",
    "conv_layers",
    "model_flops",
]


# --------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, width, 3, stride, 1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = _conv_bn(width, cout, 3, 1, 1)
        self.downsample = (
            nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with a shortcut."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride, 1)
        self.conv3, self.bn3 = _conv_bn(width, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """7x7/2 stem, 3x3/2 max pool, four stages of blocks (64..512 wide), average pool, fc."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: Sequence[int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(3, 64, 7, 2, 3)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for i, depth in enumerate(depths):
            width = 64 << i
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a (N, 3, H, W) batch."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand (t x), 3x3 depthwise (carrying the stride), 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block forward (with the shortcut where shapes allow)."""
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """Table 2 of the paper: (t, c, n, s) bottleneck stages between a 3x3/2 stem and a 1x1 to 1280."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a (N, 3, H, W) batch."""
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------
# VGG-11
# --------------------------------------------------------------------------


class VGG(nn.Module):
    """Configuration A: 3x3 convs (with bias) and 2x2 max pools, then three fully connected layers."""

    CONFIG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, config: Sequence[int | str] = CONFIG_A, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 49, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a (N, 3, H, W) batch."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --------------------------------------------------------------------------
# DenseNet-121
# --------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 (to 4 x growth) then BN-ReLU-3x3 (to growth), on all earlier features."""

    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The layer's ``growth`` new channels."""
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """``n`` dense layers; each sees the concatenation of the input and every earlier layer."""

    def __init__(self, n: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The input and every layer's output, concatenated."""
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    """7x7/2 stem and max pool, four dense blocks with BN-ReLU-1x1-avgpool transitions, fc."""

    def __init__(self, blocks: Sequence[int] = (6, 12, 24, 16), growth: int = 32,
                 init_features: int = 64, bn_size: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {
            "conv0": nn.Conv2d(3, init_features, 7, 2, 3, bias=False),
            "norm0": nn.BatchNorm2d(init_features),
            "relu0": nn.ReLU(inplace=True),
            "pool0": nn.MaxPool2d(3, 2, 1),
        }
        c = init_features
        for i, n in enumerate(blocks):
            layers[f"denseblock{i + 1}"] = DenseBlock(n, c, growth, bn_size)
            c += n * growth
            if i != len(blocks) - 1:
                layers[f"transition{i + 1}"] = nn.Sequential(
                    nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                    nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2),
                )
                c //= 2
        layers["norm5"] = nn.BatchNorm2d(c)
        self.features = nn.Sequential()
        for name, module in layers.items():
            self.features.add_module(name, module)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a (N, 3, H, W) batch."""
        x = nn.functional.relu(self.features(x))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: ResNet(BasicBlock, (2, 2, 2, 2)),
    "resnet50": lambda: ResNet(Bottleneck, (3, 4, 6, 3)),
    "mobilenet_v2": MobileNetV2,
    "vgg11": VGG,
    "densenet121": DenseNet,
}


def build_model(name: str, seed: int = 0, device: Any = None) -> nn.Module:
    """A freshly initialised model of :data:`MODELS`.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    seed : int, optional
        Seed of the initial weights.
    device : torch.device or str, optional
        ``"meta"`` builds it without memory (to count parameters or list
        layer shapes).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise KeyError(f"bench: unknown model {name!r}; known: {', '.join(MODELS)}")
    torch.manual_seed(seed)
    if device is None:
        return MODELS[name]()
    with torch.device(device):
        return MODELS[name]()


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements of ``model``.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
    """
    return sum(p.numel() for p in model.parameters())


def conv_layers(model: nn.Module, image_size: int = 224) -> list[dict[str, Any]]:
    """Every Conv2d call of one forward at batch 1, with its input shape.

    The model runs one eval-mode forward on the device of its parameters:
    on a model built with ``device="meta"`` that takes no memory and no
    compute.

    Parameters
    ----------
    model : torch.nn.Module
    image_size : int, optional
        Height and width of the (1, 3, H, W) input.

    Returns
    -------
    list of dict
        Per call, in order: ``C``, ``H``, ``W``, ``K``, ``R``, ``S``,
        ``stride``, ``padding``, ``dilation`` (pairs), ``groups``, ``bias``.
    """
    found: list[dict[str, Any]] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        assert isinstance(module, nn.Conv2d)
        _, c, h, w = args[0].shape
        found.append({
            "C": int(c), "H": int(h), "W": int(w), "K": module.out_channels,
            "R": module.kernel_size[0], "S": module.kernel_size[1],
            "stride": list(module.stride), "padding": list(module.padding),  # type: ignore[arg-type]
            "dilation": list(module.dilation), "groups": module.groups,
            "bias": module.bias is not None,
        })

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    device = next(model.parameters()).device
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return found


def model_flops(name: str, image_size: int = 224) -> float:
    """Forward FLOPs of one image through the model's conv and linear layers.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    image_size : int, optional

    Returns
    -------
    float
        2 * multiply-adds of every Conv2d and Linear (pooling, BN, ReLU not counted).
    """
    model = build_model(name, device="meta")
    total = 0.0
    for layer in conv_layers(model, image_size):
        ho = (layer["H"] + 2 * layer["padding"][0] - layer["dilation"][0] * (layer["R"] - 1) - 1) // layer["stride"][0] + 1
        wo = (layer["W"] + 2 * layer["padding"][1] - layer["dilation"][1] * (layer["S"] - 1) - 1) // layer["stride"][1] + 1
        total += 2.0 * layer["K"] * (layer["C"] // layer["groups"]) * layer["R"] * layer["S"] * ho * wo
    for module in model.modules():
        if isinstance(module, nn.Linear):
            total += 2.0 * module.in_features * module.out_features
    return total


# --------------------------------------------------------------------------
# Benchmark lines: a training step and inference, three variants
# --------------------------------------------------------------------------

DEFAULT_MODES = ("infer_b1", "infer_b8", "train_b8")
# Cross-check limit of model lines: logits (or a first training step's loss)
# of deep float32 networks computed by different kernels.
MODEL_TOLERANCE = 1e-2


def parse_mode(mode: str) -> tuple[str, int]:
    """``"train_b8"`` -> ("train", 8); ``"infer_b1"`` -> ("infer", 1).

    Parameters
    ----------
    mode : str

    Returns
    -------
    tuple of (str, int)

    Raises
    ------
    ValueError
        If ``mode`` is not ``train_b<N>`` or ``infer_b<N>`` with N >= 1.
    """
    kind, _, batch = mode.partition("_b")
    if kind not in ("train", "infer") or not batch.isdigit() or int(batch) < 1:
        raise ValueError(f"bench: mode must be train_b<N> or infer_b<N> (N >= 1), got {mode!r}")
    return kind, int(batch)


def model_cases(
    name: str, modes: Sequence[str], convext_torch: Any, image_size: int = 224, seed: int = 0
) -> list[Any]:
    """The benchmark lines of one model: one per mode, three variants each.

    Variants: ``torch`` (stock, NCHW), ``torch_cl`` (stock, model and input in
    channels_last) and ``convext`` (``convext.torch.convert`` of the model, NCHW
    input), each its own copy of the same initial weights.  ``train_b<N>``
    times one training step (forward, cross-entropy loss, backward, SGD step
    without momentum; the gradients are reset, untimed, before it);
    ``infer_b<N>`` an eval-mode forward under ``torch.no_grad``.  The torch
    RNG is reseeded before each step, so that the variants draw the same
    dropout masks (MobileNetV2, VGG-11).  Inputs are
    N(0, 1) images of ``image_size`` squared, labels uniform over the 1000
    classes.  Modes are best ordered inference first: the cross-check of a
    training line compares the variants' first-step losses, which is only
    meaningful while their weights are still equal.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    modes : sequence of str
        ``train_b<N>`` / ``infer_b<N>``.
    convext_torch : module
        ``convext.torch`` (passed in so that this module imports without it).
    image_size : int, optional
    seed : int, optional

    Returns
    -------
    list of convext.bench.timing.Case
        ``row`` = model name, ``op`` = mode, ``kind`` = "model".
    """
    import copy
    import warnings

    from convext.bench.timing import CONVEXT, Case, Task

    base = build_model(name, seed)
    with warnings.catch_warnings():  # the modules convert leaves on torch are the measured state
        warnings.simplefilter("ignore", convext_torch.ConversionWarning)
        converted = convext_torch.convert(copy.deepcopy(base))
    variants = {
        "torch": (base, torch.contiguous_format),
        "torch_cl": (copy.deepcopy(base).to(memory_format=torch.channels_last),  # type: ignore[call-overload]
                     torch.channels_last),
        CONVEXT: (converted, torch.contiguous_format),
    }
    flops = model_flops(name, image_size)
    generator = torch.Generator().manual_seed(seed + 1)
    cases = []
    for mode in modes:
        kind, batch = parse_mode(mode)
        x = torch.randn(batch, 3, image_size, image_size, generator=generator)
        y = torch.randint(0, 1000, (batch,), generator=generator)
        tasks = {}
        for variant, (model, fmt) in variants.items():
            xv = x.contiguous(memory_format=fmt)
            if kind == "infer":
                tasks[variant] = _infer_task(Task, model, xv)
            else:
                tasks[variant] = _train_task(Task, model, xv, y)
        info = {"row": name, "mode": mode, "batch": batch, "x": [batch, 3, image_size, image_size],
                "parameters": count_parameters(base)}
        total = flops * batch * (3 if kind == "train" else 1)
        cases.append(Case(name, "model", mode, info, total, tasks, tolerance=MODEL_TOLERANCE))
    return cases


def _infer_task(task: Any, model: nn.Module, x: torch.Tensor) -> Any:
    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return task(run, lambda: model.eval())


def _train_task(task: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Any:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def prepare() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the same dropout masks for every variant (cross-check)

    def run() -> torch.Tensor:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return task(run, prepare)
