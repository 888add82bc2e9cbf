"""Money as people read it: paise to rupees with Indian digit grouping."""


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
