"""The vertical part of a federation file: who holds the labels, holdout, protocol settings.

In a vertical federation (``mode = "vertical"``) the participants hold *different* columns
of the same subjects. Each ``[[participants]]`` entry declares its own ``schema`` (id column
and features); exactly one also names the ``label`` column: that party is the guest, the
others are hosts. Ids are aligned by private set intersection before training, so the
files need not list the same subjects, in the same order or at all.

```toml
[vertical]                 # all optional
holdout = 0.25             # share of the aligned rows kept out of training for evaluation
l2 = 0.0001                # L2 penalty of every party's weights
feature_clip_norm = 8.0    # per-row L2 clip of each party's standardised features
label_noise_multiplier = 1.0   # Gaussian noise on the gradients released to hosts (label DP)
```

``protocol = "split-nn"`` trains a split neural network instead (bottom networks at every
party, the top network at the guest), with ``privacy = "dp"`` (cut-layer clipping and
Gaussian noise on both releases) or ``"none"``:

```toml
[vertical]
protocol = "split-nn"
cut_width = 8                      # cut-layer activations per party and row
bottom_hidden = [32]               # hidden layers of each party's bottom network
top_hidden = [16]                  # hidden layers of the guest's top network
activation_clip_norm = 4.0         # per-row L2 clip of the activations a host releases
activation_noise_multiplier = 1.0  # their Gaussian noise, in units of the clip (host features)
gradient_clip_norm = 0.3           # per-row L2 clip of the gradients the guest releases
gradient_noise_multiplier = 1.0    # their Gaussian noise (the guest's labels)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from models.errors import FederationFileError

__all__ = ["SplitNNSettings", "VerticalSpec"]

#: What vertical federations support today: CKKS-protected vertical logistic regression,
#: bring-your-own (``logistic``) or one of the product models split between bank and gov.
VERTICAL_MODELS = ("logistic", "farmer_credit", "sme_risk")
VERTICAL_PRIVACY = ("he", "none")
PROTOCOLS = ("logistic-regression", "split-nn")
SPLIT_NN_PRIVACY = ("dp", "none")


@dataclass(frozen=True)
class SplitNNSettings:
    """``[vertical]`` settings of a split neural network (``protocol = "split-nn"``)."""

    cut_width: int = 8
    bottom_hidden: tuple[int, ...] = (32,)
    top_hidden: tuple[int, ...] = (16,)
    activation_clip_norm: float = 4.0
    activation_noise_multiplier: float = 1.0
    gradient_clip_norm: float = 0.3
    gradient_noise_multiplier: float = 1.0
    #: False under ``privacy = "none"``: activations and gradients are released unnoised.
    noised: bool = True


@dataclass(frozen=True)
class VerticalSpec:
    """Validated ``[vertical]`` settings and the label holder's name."""

    guest: str
    hosts: tuple[str, ...]
    holdout: float = 0.25
    l2: float = 1e-4
    feature_clip_norm: float = 8.0
    label_noise_multiplier: float | None = None
    protocol: str = "logistic-regression"
    #: Set exactly when ``protocol`` is "split-nn".
    split: SplitNNSettings | None = None


def check_vertical_participants(
    *, file: str, schemas: Sequence[tuple[str, object]]
) -> tuple[str, tuple[str, ...]]:
    """The guest (the one participant whose schema names a label) and the hosts.

    ``schemas`` lists (participant name, its schema or None) in file order.
    """
    if len(schemas) < 2:
        raise FederationFileError(
            file=file, key="participants", reason="a vertical federation needs at least two"
        )
    for index, (name, schema) in enumerate(schemas):
        if schema is None:
            raise FederationFileError(
                file=file,
                key=f"participants[{index}].schema",
                reason=f"missing: in a vertical federation {name!r} declares its own "
                "schema = { id = ..., features = [...] } (and the label holder a label)",
            )
    labelled = [name for name, schema in schemas if getattr(schema, "label", None)]
    if len(labelled) != 1:
        found = ", ".join(labelled) or "none"
        raise FederationFileError(
            file=file,
            key="participants",
            reason=f"exactly one participant's schema must name the label column (found: {found})",
        )
    guest = labelled[0]
    return guest, tuple(name for name, _ in schemas if name != guest)


def check_product_parties(
    *, file: str, model: str, guest: str, schemas: Sequence[tuple[str, object]]
) -> None:
    """A product model's parties hold exactly the features :mod:`models.specs` gives them.

    Participants are named after the spec's parties (``bank`` holds the labels, ``gov``
    the registry features); ids and label column names are each party's own.
    """
    from models.specs import LABEL_PARTY, get_spec

    spec = get_spec(model)
    if spec.mode != "vertical":
        return
    names = [name for name, _ in schemas]
    if sorted(names) != sorted(spec.parties) or guest != LABEL_PARTY:
        raise FederationFileError(
            file=file,
            key="participants",
            reason=f"model {model!r} is trained by parties {', '.join(spec.parties)} "
            f"({LABEL_PARTY} holds the labels); got {', '.join(names)} with labels at {guest}",
        )
    for index, (name, schema) in enumerate(schemas):
        expected = spec.party_schema(name)
        declared = tuple(getattr(schema, "features", ()))
        # Ids and label column names are each party's own: compare the features only.
        differences = expected.compare(replace(expected, features=declared))
        if differences:
            raise FederationFileError(
                file=file,
                key=f"participants[{index}].schema",
                reason=f"{name}'s features differ from model {model!r}: "
                + "; ".join(differences[:5]),
            )
