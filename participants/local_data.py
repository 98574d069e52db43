"""A participant's view of its own data: load, check against the schema, filter by consent.

Everything here runs at the participant node; nothing it reads leaves the node except
counts (rows used, rows excluded and why).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from consent.eligibility import exclusion_reason
from consent.grants import GrantState
from consent.keys import write_private
from consent.store import SQLiteConsentStore
from models.federation import FederationSpec, ParticipantSpec
from models.layout import commitment_salt_path
from models.resolve import training_schema
from models.schema import TabularSchema
from models.tabular import TabularData, load_table

logger = logging.getLogger(__name__)


class ParticipantError(Exception):
    """Root of the participant package's errors."""


class UnknownParticipantError(ParticipantError, LookupError):
    """The node was started for a participant the federation file does not name."""


@dataclass(frozen=True)
class EligibleData:
    """Rows a participant may train on this round, and the counts of what it left out."""

    data: TabularData
    rows_total: int
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def rows_used(self) -> int:
        return len(self.data.ids)


def participant_spec(spec: FederationSpec, name: str) -> ParticipantSpec:
    """The federation file's entry for participant ``name``."""
    for participant in spec.participants:
        if participant.name == name:
            return participant
    known = ", ".join(p.name for p in spec.participants)
    raise UnknownParticipantError(
        f"participant {name!r} is not in federation {spec.name!r} ({spec.path}); known: {known}"
    )


def declared_schema(spec: FederationSpec, participant: ParticipantSpec) -> TabularSchema:
    """The schema this participant holds: its own declaration, else the federation's."""
    if participant.schema is not None:
        return participant.schema
    return training_schema(spec)


def consent_as_of(spec: FederationSpec) -> datetime:
    """The instant consent is evaluated at: the file's ``consent_as_of`` or now (UTC)."""
    return spec.consent_as_of or datetime.now(UTC)


def load_eligible(spec: FederationSpec, participant: ParticipantSpec) -> EligibleData:
    """Load the participant's file and keep only rows whose subject consented to training.

    Without a consent database every row is used (the data owner vouches for consent);
    with one, a row is kept only if its subject has an active grant for the federation's
    purpose covering every data category this participant declares (DESIGN.md, Consent).
    """
    schema = declared_schema(spec, participant)
    data = load_table(participant.file, schema, require_label=schema.label is not None)
    if participant.consent_db is None:
        return EligibleData(data=data, rows_total=len(data.ids))
    subjects = _subjects(participant, data)
    at = consent_as_of(spec)
    categories = frozenset(participant.categories)
    states_by_subject: dict[str, list[GrantState]] = defaultdict(list)
    for state in SQLiteConsentStore(participant.consent_db).states().values():
        states_by_subject[state.grant.subject_id].append(state)
    reason_of = {
        subject: exclusion_reason(
            states_by_subject.get(subject, []),
            purpose=spec.consent_purpose,
            categories=categories,
            at=at,
        )
        for subject in set(subjects)
    }
    keep = np.fromiter((reason_of[s] is None for s in subjects), dtype=bool, count=len(subjects))
    reasons = Counter(str(reason_of[s]) for s in subjects if reason_of[s] is not None)
    logger.info(
        "participant %s: %d of %d rows have an active %s grant",
        participant.name,
        int(keep.sum()),
        len(keep),
        spec.consent_purpose,
    )
    return EligibleData(data=data.subset(keep), rows_total=len(keep), excluded=dict(reasons))


def _subjects(participant: ParticipantSpec, data: TabularData) -> list[str]:
    if participant.subject_column is None or participant.subject_column == data.schema.id:
        return [str(s) for s in data.ids]
    import pandas as pd

    frame = (
        pd.read_parquet(participant.file, columns=[participant.subject_column])
        if participant.file.suffix.lower() in {".parquet", ".pq"}
        else pd.read_csv(participant.file, usecols=[participant.subject_column], dtype=str)
    )
    return [str(s) for s in frame[participant.subject_column]]


def data_commitment(data: TabularData) -> str:
    """A hiding, binding commitment to the rows a participant trains on: SHA-256 over the
    node's secret salt, then its sorted ids with their feature rows. The node can open it
    to an auditor (salt and data); nobody else learns anything from it."""
    path = commitment_salt_path()
    if not path.exists():
        write_private(path, secrets.token_bytes(32))  # first writer wins, never replaced
    digest = hashlib.sha256(path.read_bytes())
    ids = np.asarray([str(i) for i in data.ids])
    order = np.argsort(ids, kind="stable")
    digest.update("\0".join(ids[order].tolist()).encode())
    digest.update(np.ascontiguousarray(data.features[order], dtype=np.float32).tobytes())
    return digest.hexdigest()
