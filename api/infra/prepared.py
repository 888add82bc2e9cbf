"""Hot statements compiled once per dialect and run on the driver's own connection.

SQLAlchemy runs an already cached Core statement in over a hundred microseconds of
Python (an execution context, result metadata, the async adaption's greenlet hops),
several times what SQLite or asyncpg take to run it. The statements every shopper's
lock and unlock make (``api.services.lock_rows`` and the vend writer's lock path) go
through :class:`Prepared` instead:

- the SQL text, the order of its parameters and the type processors of its parameters
  and result columns come from SQLAlchemy's own compiler, once per dialect, so values
  are converted exactly as SQLAlchemy would;
- the statement runs in the session's transaction, on its connection: inline on
  SQLite while the writer's turn is held (``api.infra.sqlite_inline``), else on
  aiosqlite's thread; on PostgreSQL through asyncpg's prepared statements, which
  SQLAlchemy's adapter caches per connection, after the adapter has begun its
  transaction;
- the driver's errors come out as SQLAlchemy's (``IntegrityError`` and the rest, with
  the original, and its SQLSTATE, as ``orig``), so callers catch what they always did.

Only plain statements belong here: no expanding ``IN`` lists, no ORM entities.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement

from api.infra.sqlite_inline import INLINE

_RAW = "smartvend_raw_connection"


@dataclass(frozen=True)
class _Form:
    """A statement as one dialect runs it."""

    sql: str
    construct: Callable[[Mapping[str, Any]], dict[str, Any]]
    order: tuple[str, ...]
    binds: Mapping[str, Callable[[Any], Any]]
    keys: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.construct(params)
        out = []
        for key in self.order:
            value = values[key]
            process = self.binds.get(key)
            out.append(value if process is None or value is None else process(value))
        return out

    def rows(self, found: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        keys, results = self.keys, self.results
        return [
            {
                key: value if process is None else process(value)
                for key, process, value in zip(keys, results, row, strict=True)
            }
            for row in found
        ]


class Prepared:
    """A Core statement run on the driver's connection (module docstring)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            compiled: Any = self.statement.compile(dialect=dialect)
            columns = compiled._result_columns
            form = self._forms[dialect.name] = _Form(
                sql=compiled.string,
                construct=lambda params: compiled.construct_params(params),
                order=tuple(compiled.positiontup or ()),
                binds=dict(compiled._bind_processors),
                keys=tuple(column.keyname for column in columns),
                results=tuple(
                    column.type._cached_result_processor(dialect, None) for column in columns
                ),
            )
        return form

    async def all(
        self, s: AsyncSession | AsyncConnection, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The statement's rows (``RETURNING`` ones for a write), each keyed by column; on
        a session's connection in its transaction, or on ``s`` itself (a connection)."""
        dialect, adapted, sync = await (
            _on(s) if isinstance(s, AsyncConnection) else _connection(s)
        )
        form = self._form(dialect)
        args = form.args(params)
        if sync.dispatch.before_cursor_execute:  # who counts statements still sees these
            sync.dispatch.before_cursor_execute(sync, None, form.sql, args, None, False)
        try:
            if dialect.name == "sqlite":
                found = await _sqlite(adapted, form.sql, args)
            else:
                found = await _asyncpg(adapted, form.sql, args)
        except exc.DBAPIError:
            raise
        except Exception as error:
            raise _translated(dialect, adapted, form.sql, args, error) from error
        return form.rows(found)

    async def first(
        self, s: AsyncSession | AsyncConnection, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        found = await self.all(s, params)
        return found[0] if found else None

    async def scalar(self, s: AsyncSession | AsyncConnection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = await self.first(s, params)
        return None if row is None else next(iter(row.values()))


async def _connection(s: AsyncSession) -> tuple[Dialect, Any, Connection]:
    """The dialect, DBAPI adapter and connection of the session, in its transaction;
    looked up once per transaction (``AsyncSession.connection`` costs a greenlet hop)."""
    transaction = s.sync_session.get_transaction()
    cached = s.info.get(_RAW)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cached[1], cached[2], cached[3]
    conn = await s.connection()
    fairy = await conn.get_raw_connection()
    sync = conn.sync_connection
    assert sync is not None  # a session's connection in its transaction
    found = (conn.dialect, fairy.dbapi_connection, sync)
    s.info[_RAW] = (s.sync_session.get_transaction(), *found)
    return found


async def _on(conn: AsyncConnection) -> tuple[Dialect, Any, Connection]:
    fairy = await conn.get_raw_connection()
    sync = conn.sync_connection
    assert sync is not None
    return conn.dialect, fairy.dbapi_connection, sync


async def _sqlite(adapted: Any, sql: str, args: list[Any]) -> list[Any]:
    connection = adapted._connection  # the aiosqlite connection (api.infra.sqlite_inline)
    if INLINE.get():
        return list(connection._conn.execute(sql, args).fetchall())
    async with connection.execute(sql, args) as cursor:
        return list(await cursor.fetchall())


async def _asyncpg(adapted: Any, sql: str, args: list[Any]) -> list[Any]:
    async with adapted._execute_mutex:
        if adapted._transaction is None:
            await adapted._start_transaction()
        prepared, _attributes = await adapted._prepare(sql, adapted._invalidate_schema_cache_asof)
        return list(await prepared.fetch(*args))


def _translated(
    dialect: Dialect, adapted: Any, sql: str, args: list[Any], error: Exception
) -> exc.StatementError:
    """The driver's ``error`` as SQLAlchemy raises it from ``execute``."""
    dbapi: Any = dialect.loaded_dbapi
    try:
        adapted._handle_exception(error)  # the DBAPI adapter's own exception, as raised
    except Exception as translated:
        error = translated
    return exc.DBAPIError.instance(sql, args, error, dbapi.Error, dialect=dialect)
