"""What the 16x2 LCD says, decided from a small view of the machine's state.

``lines(view)`` is a pure function: the controller builds ``view`` (a dict) and
emits an ``("lcd", line1, line2)`` action whenever the result changes. Lines are
ASCII and at most 16 characters, plus the rupee sign ``₹`` in the slot lines,
which the HAL draws as a custom character (an HD44780's ROM has none; the
firmware programs it into CGRAM). The v1 price line stays ``Rs 25.00``.

View keys (all optional except ``mode``):

* ``mode``: ``idle``, ``locked``, ``dispensing``, ``error``, ``out_of_service``
* ``ready``: a ``desired`` has been applied at least once
* ``connected``: the MQTT session is up; ``server_online``: the server said so
* ``code``: the display code to show (already checked for expiry) or None
* ``price``: ``{"amount": paise, "currency": "INR"}`` or None
* ``stock``: units left or None when unknown
* ``unit``, ``quantity``: dispense progress (1-based unit)
* ``message``: ``(line1, line2)`` shown for a few seconds after a vend
* ``slot``: while dispensing a command with lines, the slot id now running; when
  idle on a machine with several slots, the slot line to show (``slot_line``)
* ``fault``: the error code while in ``error``

Portable: runs under CPython and MicroPython (no str.ljust/center there).
"""

TYPE_CHECKING = False  # mypy reads the block below; no runtime ever runs it
if TYPE_CHECKING:
    from typing import Any

    Lines = tuple[str, str]

WIDTH = 16

_SYMBOLS = {"INR": "Rs", "USD": "$", "EUR": "EUR", "GBP": "GBP"}
RUPEE = "\u20b9"  # drawn by the HAL as custom character 0


def fit(text: str) -> str:
    """Cut to the display width and drop characters the LCD cannot draw."""
    text = str(text)[:WIDTH]
    for byte in text.encode():  # small ints: no allocation while all is plain ASCII
        if not 32 <= byte < 127:
            break
    else:
        return text
    out = []
    for ch in text:
        out.append(ch if 32 <= ord(ch) < 127 or ch == RUPEE else "?")
    return "".join(out)


def price_text(price: "dict[str, Any] | None") -> str:
    """``{"amount": 2500, "currency": "INR"}`` -> ``"Rs 25.00"``."""
    if not price:
        return ""
    amount = int(price.get("amount", 0))
    currency: str = price.get("currency", "")
    symbol = _SYMBOLS.get(currency, currency)
    whole = amount // 100
    cents = amount % 100
    return symbol + " " + str(whole) + "." + ("0" if cents < 10 else "") + str(cents)


def slot_line(slot: "dict[str, Any]") -> str:
    """A ``desired`` slot as one idle-screen line of exactly 16 characters, the price
    on the right: ``"A1 Cola   ₹20.00"`` (the name cut to fit), ``"C2 Choc sold out"``."""
    price = slot["price"]
    if slot["stock"] <= 0:
        right = "sold out"
    else:
        amount = int(price["amount"])
        currency = price["currency"]
        symbol = RUPEE if currency == "INR" else _SYMBOLS.get(currency, currency)
        right = f"{symbol}{amount // 100}.{amount % 100:02d}"
    room = WIDTH - 1 - len(right)
    if room < 3:  # an absurd price: the price alone
        return (right + " " * WIDTH)[:WIDTH]
    left = fit(slot["id"] + " " + slot["name"])[:room]
    return left + " " * (WIDTH - len(left) - len(right)) + right


def thanks() -> "Lines":
    return ("Thank you!", "Enjoy!")


def failure(dispensed: int, quantity: int) -> "Lines":
    if dispensed > 0:
        return ("Only " + str(dispensed) + "/" + str(quantity) + " given", "Refund for rest")
    return ("Sorry, failed", "Refund on way")


def expired() -> "Lines":
    return ("Order expired", "Refund on way")


def rejected(error: str) -> "Lines":
    if error == "insufficient_stock":
        return ("Not enough stock", "Refund on way")
    return ("Cannot vend now", "Refund on way")


def lines(view: "dict[str, Any]") -> "Lines":
    """The two LCD lines for this view, each at most 16 characters."""
    mode = view.get("mode")
    slot = view.get("slot")
    if mode == "dispensing":
        progress = str(view.get("unit", 1)) + "/" + str(view.get("quantity", 1))
        pair: Lines = ("Dispensing " + progress, "Slot " + slot if slot else "Please wait")
    elif view.get("message"):
        pair = view["message"]
    elif mode == "error":
        pair = ("Out of order", "Call operator")
    elif mode == "out_of_service":
        pair = ("Out of service", "Sorry")
    elif not view.get("connected"):
        pair = ("Offline", "Reconnecting...")
    elif not view.get("ready"):
        pair = ("SmartVend", "Starting...")
    elif mode == "locked":
        pair = ("In use", "Pay on phone")
    elif view.get("stock") == 0:
        pair = ("Out of stock", "Sorry")
    elif not view.get("server_online", True):
        pair = ("Service paused", "Please wait")
    elif view.get("code"):
        pair = ("Code " + view["code"], slot or price_text(view.get("price")))
    else:
        pair = ("Please wait", slot or price_text(view.get("price")))
    return (fit(pair[0]), fit(pair[1]))
