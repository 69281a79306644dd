"""NeRF model components: positional encoding, activation registry and the MLP."""
from models.activations import ACTIVATIONS, ActivationSpec, get_activation
from models.encoding import PositionalEncoding
from models.nerf import NeRF, RadianceField, build_fields

__all__ = ["ACTIVATIONS", "ActivationSpec", "get_activation", "PositionalEncoding",
           "NeRF", "RadianceField", "build_fields"]
