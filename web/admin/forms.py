"""Reading dashboard forms field by field, so each error can be shown next to its field.

Amounts are typed and explained in rupees; the services get paise.
"""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from starlette.requests import Request

from api.errors import InvalidRequest
from api.money import money
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
    """An amount typed in rupees (25, 25.50, ₹1,250), as paise."""
    text = field(request, name, 16).replace("₹", "").replace(",", "").strip()
    problem = f"{label} must be an amount in rupees, like 25 or 25.50."
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidRequest(problem) from exc
    paise = value * 100
    if not value.is_finite() or paise != paise.to_integral_value():
        raise InvalidRequest(problem)
    return int(paise)


def price(request: Request, name: str, low: int, high: int) -> int:
    amount = rupees(request, name, "The price")
    if not low <= amount <= high:
        raise InvalidRequest(f"The price must be from {money(low)} to {money(high)}.")
    return amount
