"""``column IN (a list)`` written once per dialect, so a hot statement stays one statement.

SQLAlchemy's expanding ``IN`` renders one placeholder per value when it runs, so a
batch of 7 machines and one of 250 are different SQL texts: each is compiled again,
and on PostgreSQL each is a new prepared statement for asyncpg (whose cache then
turns over). PostgreSQL takes the whole list as one array parameter, ``= ANY($1)``:
one text, prepared once per connection, whatever the batch's size. SQLite has no
arrays and keeps the expanding form.
"""

from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

DIALECTS = ("postgresql", "sqlite")
S = TypeVar("S", bound=Executable)


def one_of(column: ColumnElement[str], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the values bound as ``name`` (a list), as ``dialect`` best
    takes it."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


class PerDialect(Generic[S]):
    """One statement per dialect, built by ``build(dialect)``; picked by the session's."""

    def __init__(self, build: Callable[[str], S]) -> None:
        self._forms = {dialect: build(dialect) for dialect in DIALECTS}

    def on(self, s: AsyncSession) -> S:
        return self._forms[s.get_bind().dialect.name]
