"""Money as people read it: paise to rupees with Indian digit grouping."""

import re


def group_indian(whole: int) -> str:
    """12345678 -> '1,23,45,678' (lakh and crore grouping, as shoppers in India read it)."""
    digits = str(whole)
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return ",".join([*groups, tail])


def money(amount: int, currency: str = "INR") -> str:
    """Paise to what a shopper reads: 2500 -> '₹25.00'."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 100)
    if currency == "INR":
        return f"{sign}₹{group_indian(whole)}.{fraction:02d}"
    return f"{sign}{whole:,}.{fraction:02d} {currency}"


class AmbiguousAmount(ValueError):
    """Typed text that is not one clear amount in rupees; ``hint`` says what went wrong, if
    more can be said than "type an amount"."""

    def __init__(self, hint: str = "") -> None:
        super().__init__(hint or "not an amount in rupees")
        self.hint = hint


_GROUPED_INDIAN = re.compile(r"^\d{1,2}(,\d{2})*,\d{3}$")
_GROUPED_WESTERN = re.compile(r"^\d{1,3}(,\d{3})+$")


def parse_rupees(text: str) -> int:
    """What an operator typed in rupees, as paise; anything that could mean two amounts is refused.

    Accepted: ``20``, ``20.5``, ``20.50``, ``₹20.50``, ``Rs 20``, and thousands written
    with correct grouping (``1,250``, ``1,00,000``, ``100,000``). Refused: a comma where a
    decimal point may have been meant (``20,50``, ``2,5``), exponents (``1e3``), digit
    underscores (``1_000``), more than two decimals, signs and anything else.
    """
    cleaned = text.strip()
    for prefix in ("₹", "Rs.", "Rs", "INR"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix) :].strip()
            break
    whole, dot, fraction = cleaned.partition(".")
    if "," in whole:
        if not (_GROUPED_INDIAN.match(whole) or _GROUPED_WESTERN.match(whole)):
            raise AmbiguousAmount(
                "Use a dot for paise and commas only between thousands, like 20.50 or 1,250."
            )
        whole = whole.replace(",", "")
    if not whole.isascii() or not whole.isdigit() or (dot and not fraction):
        raise AmbiguousAmount()
    if dot and (not fraction.isascii() or not fraction.isdigit() or len(fraction) > 2):
        raise AmbiguousAmount("Paise take at most two digits after the dot, like 20.50.")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")


def big_change(old: int, new: int, ratio: float = 0.5) -> bool:
    """A change by more than ``ratio`` of the old amount, up or down: worth a second look."""
    return old > 0 and abs(new - old) > old * ratio
