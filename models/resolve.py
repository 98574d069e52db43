"""What a federation file resolves to: the schema trained on and the network architecture.

Both the coordinator and the participants resolve these from the same federation file.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SchemaError
from .federation import FederationSpec
from .schema import TabularSchema
from .specs import get_spec


@dataclass(frozen=True)
class Architecture:
    """A network kind ("logistic" or "mlp") and its hidden layer sizes."""

    kind: str
    hidden: tuple[int, ...]


def training_schema(spec: FederationSpec) -> TabularSchema:
    """The federation's ``[schema]``, else the named model's built-in schema."""
    if spec.schema is not None:
        return spec.schema
    model_schema = get_spec(spec.model).schema
    if model_schema is None:
        raise SchemaError(
            f"{spec.path}: model {spec.model!r} has no built-in schema; add a [schema] block"
        )
    return model_schema


def architecture(spec: FederationSpec) -> Architecture:
    """The network to train: the model spec's, with the file's ``hidden`` for ``mlp``."""
    model = get_spec(spec.model)
    hidden = tuple(spec.hidden) if spec.hidden else tuple(model.hidden)
    return Architecture(
        kind=model.architecture, hidden=hidden if model.architecture == "mlp" else ()
    )
