from collections.abc import AsyncIterator

import pytest

from api.payments.razorpay_gateway import RazorpayGateway
from tests.fakes.razorpay_server import RazorpayFake, razorpay_fake


@pytest.fixture
async def fake() -> AsyncIterator[RazorpayFake]:
    async with razorpay_fake() as server:
        yield server


@pytest.fixture
def gateway(fake: RazorpayFake) -> RazorpayGateway:
    return RazorpayGateway(
        fake.key_id, fake.key_secret, fake.webhook_secret, base_url=fake.base_url, timeout=5.0
    )
