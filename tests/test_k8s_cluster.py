"""The launcher against a real cluster (kind or k3d): apply the demo overlay, wait until it
is ready, train one round as a Job. Skipped unless ``FEDRISK_KUBECONFIG`` names a
kubeconfig (``FEDRISK_K8S_CONTEXT`` picks its context).

The cluster must be prepared as deploy/k8s/README.md says ("Running on a real cluster"):
the ``fedrisk:demo`` image loaded, the Secrets created (``fedrisk k8s secrets``), the
state volumes holding the federation files and data.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.k8s.apply import apply_objects
from deploy.k8s.cluster import Cluster
from deploy.k8s.readiness import wait_ready, workloads
from deploy.k8s.render import render_objects
from deploy.k8s.round_job import job_name, round_job, superlink_site
from deploy.k8s.rounds import run_round

KUBECONFIG = os.environ.get("FEDRISK_KUBECONFIG")
READY_TIMEOUT_S = 600.0
ROUND_TIMEOUT_S = 1800.0

pytestmark = [
    pytest.mark.k8s_cluster,
    pytest.mark.skipif(not KUBECONFIG, reason="FEDRISK_KUBECONFIG is not set"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert KUBECONFIG is not None
    context = os.environ.get("FEDRISK_K8S_CONTEXT")
    with Cluster.from_kubeconfig(kubeconfig=Path(KUBECONFIG), context=context) as connected:
        yield connected


def test_the_demo_overlay_applies_and_becomes_ready(cluster: Cluster) -> None:
    docs = render_objects("demo")

    apply_objects(cluster, docs)
    states = wait_ready(cluster, workloads(docs), timeout_s=READY_TIMEOUT_S, poll_s=5.0)

    assert all(state.ready for state in states)


def test_one_round_trains_on_the_cluster(cluster: Cluster) -> None:
    model = "farmer-credit"
    job = round_job(
        superlink_site(render_objects("demo")),
        model=model,
        name=job_name(model, now=dt.datetime.now(dt.UTC)),
        timeout_s=ROUND_TIMEOUT_S,
        rounds=1,
    )

    outcome = run_round(cluster, job, timeout_s=ROUND_TIMEOUT_S, poll_s=5.0)

    assert outcome.succeeded, "\n".join(outcome.log[-40:])
