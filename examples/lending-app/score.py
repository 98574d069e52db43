"""A lending app against `fedrisk serve`: consent, score, refusal, evidence (HTTP only).

    python examples/lending-app/score.py --bank-secret S1 --app-secret S2 [--api URL]

The API's address is ``--api``, else ``$FEDRISK_API_URL``, else http://127.0.0.1:8080.

The bank's channel app (``bank-channel``, scope consent:write) records the farmer's consent;
the loan officers' app (``farmer-app``, scope score:*) scores the farmer, is refused for a
farmer who never consented, and fetches the evidence certificate of its decision, which it
saves for `fedrisk ledger check`. Only the HTTP API is used, as a real app would.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

MODEL = "demo-farmer-credit"


def token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    answer = api.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def shared_farmers(root: Path) -> list[str]:
    """Farmers both the bank and the government platform hold (the demo's files)."""

    def ids(path: Path) -> set[str]:
        with path.open(encoding="utf-8") as handle:
            return {row["farmer_id"] for row in csv.DictReader(handle)}

    return sorted(
        ids(root / "bank" / "farmer_credit.csv") & ids(root / "gov" / "farmer_credit.csv")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default=os.environ.get("FEDRISK_API_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--bank-secret", required=True, help="client secret of bank-channel")
    parser.add_argument("--app-secret", required=True, help="client secret of farmer-app")
    parser.add_argument("--root", type=Path, default=Path("fedrisk-demo"))
    parser.add_argument("--out", type=Path, default=Path("evidence.json"))
    args = parser.parse_args()
    farmers = shared_farmers(args.root)
    consented, stranger = farmers[0], farmers[1]

    with httpx.Client(base_url=args.api, timeout=30) as api:
        bank = token(api, "bank-channel", args.bank_secret)
        app = token(api, "farmer-app", args.app_secret)
        models = {m["name"]: m for m in api.get("/v1/models", headers=app).json()}
        categories = models[MODEL]["data_categories"]  # what the farmer must consent to
        now = datetime.now(UTC)
        grant = api.post(
            "/v1/consents",
            headers=bank,
            json={
                "subject_id": consented,
                "purpose": "credit_scoring",
                "categories": categories,
                "starts_at": now.isoformat(),
                "expires_at": (now + timedelta(days=365)).isoformat(),
                "evidence_hash": "3f" * 32,
                "channel": "branch-counter",
            },
        )
        grant.raise_for_status()
        print(
            f"consent recorded: grant {grant.json()['grant_id']}, receipt "
            f"{grant.json()['receipt']['consentReceiptID']}"
        )

        scored = api.post(f"/v1/models/{MODEL}/score", headers=app, json={"subject_id": consented})
        scored.raise_for_status()
        body = scored.json()
        print(
            f"{consented}: score {body['score']:.3f}, band {body['risk_band']}, "
            f"model {body['model_version']}, evidence {body['evidence_id']}"
        )
        for reason in body["reason_codes"]:
            print(f"  reason: {reason['text']} ({reason['party']}, +{reason['contribution']:.3f})")

        refused = api.post(f"/v1/models/{MODEL}/score", headers=app, json={"subject_id": stranger})
        print(f"{stranger}: HTTP {refused.status_code}, {refused.json()['detail']['reason']}")

        certificate = api.get(f"/v1/evidence/{body['evidence_id']}", headers=app)
        certificate.raise_for_status()
        args.out.write_text(json.dumps(certificate.json(), indent=2), encoding="utf-8")
        key = certificate.json()["tree_head"]["public_key"]
        print(
            f"evidence certificate saved to {args.out}; check it with:\n"
            f"  fedrisk ledger check {args.out} --public-key {key}"
        )
    return 0 if refused.status_code == 403 else 1


if __name__ == "__main__":
    sys.exit(main())
