"""Where the built-in test gateway keeps its orders, payments and refunds.

In the database (``test_gateway_records``), so a refund of a test payment still
works after the server restarts, as it would with Razorpay.
"""

from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schema.models import TestGatewayRecord


class GatewayRecords(Protocol):
    async def put(self, kind: str, key: str, parent: str | None, data: dict[str, Any]) -> None: ...

    async def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def children(self, kind: str, parent: str) -> list[dict[str, Any]]: ...


def _id(kind: str, key: str) -> str:
    return f"{kind}:{key}"


class DatabaseRecords:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self.db = db

    async def put(self, kind: str, key: str, parent: str | None, data: dict[str, Any]) -> None:
        async with self.db.begin() as s:
            await s.merge(TestGatewayRecord(id=_id(kind, key), kind=kind, parent=parent, data=data))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        async with self.db.begin() as s:
            found = await s.get(TestGatewayRecord, _id(kind, key))
        return None if found is None else dict(found.data)

    async def children(self, kind: str, parent: str) -> list[dict[str, Any]]:
        async with self.db.begin() as s:
            rows = await s.scalars(
                select(TestGatewayRecord).where(
                    TestGatewayRecord.kind == kind, TestGatewayRecord.parent == parent
                )
            )
            return [dict(r.data) for r in rows]
