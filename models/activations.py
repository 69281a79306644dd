"""Activation registry: each hidden nonlinearity brings its own initialisation.

An entry maps a name to ``(nonlinearity, first-layer init, hidden init)``. Layers
compute ``nonlinearity(W x + b, omega0)``; omega0 is per layer (``first_omega0`` for
the first layer of a branch, ``omega0`` for the others) and ignored by non-periodic
activations. Adding an activation is one ``register(...)`` call.

SIREN (Sitzmann et al. 2020), with n the fan-in:
  first layer  W ~ U(-1/n, 1/n)
  hidden       W ~ U(-sqrt(6/n)/omega0, +sqrt(6/n)/omega0)
  biases keep PyTorch's default init.
With ``siren_init=False`` every layer keeps PyTorch's default ``nn.Linear`` init, so
``first_omega0=1, omega0=1, siren_init=False`` is exactly ``torch.sin(linear(x))``:
the setting of the course report that swapped ReLU for sin/cos in nerf_pl.
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
from torch import nn

Init = Callable[[nn.Linear, float, Optional[torch.Generator]], None]


def default_linear_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    """PyTorch's own ``nn.Linear.reset_parameters`` (kaiming_uniform a=sqrt(5)), drawn
    from ``generator`` in the same order, so a generator seeded like the global RNG
    gives bit-identical weights."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def siren_first_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    default_linear_init(layer, omega0, generator)  # bias: PyTorch default
    n = layer.in_features
    with torch.no_grad():
        layer.weight.uniform_(-1.0 / n, 1.0 / n, generator=generator)


def siren_hidden_init(layer: nn.Linear, omega0: float, generator=None) -> None:
    default_linear_init(layer, omega0, generator)
    bound = math.sqrt(6.0 / layer.in_features) / omega0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    nonlinearity: Callable[[torch.Tensor, float], torch.Tensor]
    first_init: Init
    hidden_init: Init
    periodic: bool = False  # uses omega0 and honours --siren_init
    doc: str = ""


ACTIVATIONS: Dict[str, ActivationSpec] = {}


def register(spec: ActivationSpec) -> ActivationSpec:
    ACTIVATIONS[spec.name] = spec
    return spec


register(ActivationSpec(
    "relu", lambda z, w0: torch.relu(z), default_linear_init, default_linear_init,
    doc="max(0, z); NeRF's default, PyTorch default init as in nerf-pytorch."))
register(ActivationSpec(
    "sin", lambda z, w0: torch.sin(z if w0 == 1 else w0 * z), siren_first_init, siren_hidden_init,
    periodic=True, doc="sin(omega0 z), SIREN (Sitzmann et al. 2020)."))
register(ActivationSpec(
    "cos", lambda z, w0: torch.cos(z if w0 == 1 else w0 * z), siren_first_init, siren_hidden_init,
    periodic=True, doc="cos(omega0 z) = sin(omega0 z + pi/2): SIREN with shifted biases."))


def get_activation(name: str) -> ActivationSpec:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class ActivationConfig:
    """Which activation a branch uses and its per-layer frequency settings."""
    name: str = "relu"
    first_omega0: float = 30.0
    omega0: float = 30.0
    siren_init: bool = True

    @property
    def spec(self) -> ActivationSpec:
        return get_activation(self.name)


class ActLinear(nn.Module):
    """``nonlinearity(W x + b)`` with the activation's own init for its position."""

    def __init__(self, in_features: int, out_features: int, act: ActivationConfig,
                 is_first: bool, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        spec = act.spec
        self.nonlinearity = spec.nonlinearity
        self.omega0 = act.first_omega0 if is_first else act.omega0
        use_own_init = act.siren_init or not spec.periodic
        init = (spec.first_init if is_first else spec.hidden_init) if use_own_init else default_linear_init
        init(self.linear, self.omega0, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinearity(self.linear(x), self.omega0)

    def extra_repr(self) -> str:
        return f"omega0={self.omega0}"
