"""Both brokers (embedded amqtt and a real Mosquitto) behind one fixture.

Accounts: machines ``A`` and ``B``, the integrator ``acme``, and two server
accounts: ``srv`` (an actor in the matrix) and ``watch`` (the observer), because an
account holds one connection at a time on both brokers.
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from broker.principals import StaticAuthenticator
from tests.broker.mqtt_client import BROKER_KINDS, BrokerUnderTest, accounts_for, make_keys
from tests.support.brokers import running_embedded, running_mosquitto


@pytest_asyncio.fixture(params=BROKER_KINDS)
async def mqtt_broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerUnderTest]:
    keys = make_keys()
    accounts = accounts_for(keys)
    if request.param == "embedded":
        auth = StaticAuthenticator({u: (r, h) for u, r, h in accounts})

        async def revoke_embedded(username: str) -> None:
            auth.remove(username)

        async with running_embedded(auth) as embedded:
            yield BrokerUnderTest(
                "embedded", embedded.host, embedded.port, keys, revoke_embedded, embedded
            )
    else:
        async with running_mosquitto(accounts) as process:
            revoked: set[str] = set()

            async def revoke_mosquitto(username: str) -> None:
                revoked.add(username)
                await process.reload(accounts_for(keys, without=frozenset(revoked)))

            yield BrokerUnderTest("mosquitto", process.host, process.port, keys, revoke_mosquitto)
