"""The ConnectWise stand-in, running, and the adapter pointed at it with test credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import runtime as rt
from integrations.connectwise import ConnectWise, ConnectWiseConfig, config_from
from runtime import Runtime
from testing.connectwise_standin import ConnectWiseStandIn, running

CREDENTIALS = {
    "company": "itechsol",
    "public_key": "pubK3yAbCdEf1234",
    "private_key": "pr1vK3ySecretXyZ9876",
    "client_id": "5c3e1b7a-0d2f-4e6b-9a8c-7f1e2d3c4b5a",
}
BOARD = 7


@dataclass
class Bridge:
    """The stand-in, its URL and the adapter."""

    standin: ConnectWiseStandIn
    config: ConnectWiseConfig
    psa: ConnectWise


@pytest.fixture
def connectwise(runtime: Runtime) -> Iterator[Bridge]:
    """A ConnectWise stand-in on a free port and the adapter configured for it; the runtime installed."""
    standin = ConnectWiseStandIn(**CREDENTIALS, board_id=BOARD)
    standin.clock = runtime.now
    with running(standin) as url:
        config = config_from(
            {
                **CREDENTIALS,
                "site": url,
                "board_id": BOARD,
                "companies": {"Acme Dental": 250},
                "default_company_id": 19297,
                "priorities": {"P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5},
                "callback_secret": "cb-Secret-4f9a8e7d",
            }
        )
        rt.install(runtime)
        try:
            yield Bridge(standin, config, ConnectWise(config))
        finally:
            rt.install(None)
