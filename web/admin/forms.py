"""Reading dashboard forms field by field, so each error can be shown next to its field.

Amounts are typed and explained in rupees; the services get paise.
"""

from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request

from api.errors import InvalidRequest
from api.money import AmbiguousAmount, money, parse_rupees
from web.admin.guard import field

T = TypeVar("T")


class FieldErrors:
    """Collects one message per field; ``read`` returns None for a field in error."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}

    def read(self, name: str, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except InvalidRequest as exc:
            self.messages[name] = exc.message
            return None

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.messages)


def whole_number(request: Request, name: str, label: str, low: int, high: int) -> int:
    text = field(request, name, 12).replace(",", "")
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"{label} must be a whole number from {low:,} to {high:,}.")
    return int(text)


def rupees(request: Request, name: str, label: str) -> int:
    """An amount typed in rupees (25, 25.50, ₹1,250), as paise; ambiguous text is refused."""
    try:
        return parse_rupees(field(request, name, 24))
    except AmbiguousAmount as exc:
        message = f"{label} must be an amount in rupees, like 25 or 25.50."
        raise InvalidRequest(f"{message} {exc.hint}".strip()) from exc


def price(request: Request, name: str, low: int, high: int) -> int:
    amount = rupees(request, name, "The price")
    if not low <= amount <= high:
        raise InvalidRequest(f"The price must be from {money(low)} to {money(high)}.")
    return amount
