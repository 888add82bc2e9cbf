"""What the LCD says in each state."""

import pytest

from device import screen

PRICE = {"amount": 2500, "currency": "INR"}
READY = {"mode": "idle", "ready": True, "connected": True, "price": PRICE, "stock": 5}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"code": "123456"}, ("Code 123456", "Rs 25.00")),
        ({"code": None}, ("Please wait", "Rs 25.00")),
        ({"mode": "locked", "code": "123456"}, ("In use", "Pay on phone")),
        ({"mode": "dispensing", "unit": 1, "quantity": 2}, ("Dispensing 1/2", "Please wait")),
        ({"mode": "error", "fault": "jam"}, ("Out of order", "Call operator")),
        ({"mode": "out_of_service"}, ("Out of service", "Sorry")),
        ({"connected": False, "code": "123456"}, ("Offline", "Reconnecting...")),
        ({"ready": False}, ("SmartVend", "Starting...")),
        ({"stock": 0, "code": "123456"}, ("Out of stock", "Sorry")),
        ({"server_online": False, "code": "123456"}, ("Service paused", "Please wait")),
        ({"message": ("Thank you!", "Enjoy!"), "code": "1"}, ("Thank you!", "Enjoy!")),
        # progress wins over everything, even being offline
        (
            {"mode": "dispensing", "unit": 3, "quantity": 3, "connected": False},
            ("Dispensing 3/3", "Please wait"),
        ),
    ],
)
def test_lines_for_each_state(changes: dict[str, object], expected: tuple[str, str]) -> None:
    view = dict(READY)
    view.update(changes)
    assert screen.lines(view) == expected


def test_lines_fit_sixteen_ascii_columns() -> None:
    view = dict(READY, message=("Only 10/10 given here", "Refund \u20ac \u20b9 rest"))
    line1, line2 = screen.lines(view)
    assert line1 == "Only 10/10 given"
    assert line2 == "Refund ? \u20b9 rest"  # the rupee sign is the LCD's custom character


def _slot(**changes: object) -> dict[str, object]:
    return {
        "id": "A1",
        "name": "Cola",
        "price": {"amount": 2000, "currency": "INR"},
        "stock": 3,
        **changes,
    }


@pytest.mark.parametrize(
    ("slot", "line"),
    [
        (_slot(), "A1 Cola   \u20b920.00"),
        (
            _slot(id="B10", name="Salted potato chips", price={"amount": 12050, "currency": "INR"}),
            "B10 Salt \u20b9120.50",
        ),
        (_slot(id="C2", name="Chocolate", stock=0), "C2 Choc sold out"),
        (_slot(name="Caf\u00e9", price={"amount": 150, "currency": "USD"}), "A1 Caf?    $1.50"),
        (_slot(price={"amount": 10**15, "currency": "INR"}), "\u20b910000000000000."),
    ],
)
def test_slot_lines_are_sixteen_characters(slot: dict[str, object], line: str) -> None:
    assert screen.slot_line(slot) == line
    assert len(line) == 16


def test_idle_screen_with_slots_and_dispensing_a_line() -> None:
    assert screen.lines(dict(READY, code="123456", slot="A1 Cola   \u20b920.00")) == (
        "Code 123456",
        "A1 Cola   \u20b920.00",
    )
    assert screen.lines(dict(READY, code=None, slot="B3 Chips")) == ("Please wait", "B3 Chips")
    dispensing = dict(READY, mode="dispensing", unit=2, quantity=3, slot="B3")
    assert screen.lines(dispensing) == ("Dispensing 2/3", "Slot B3")


@pytest.mark.parametrize(
    ("price", "text"),
    [
        ({"amount": 2500, "currency": "INR"}, "Rs 25.00"),
        ({"amount": 5, "currency": "INR"}, "Rs 0.05"),
        ({"amount": 199, "currency": "USD"}, "$ 1.99"),
        ({"amount": 100, "currency": "JPY"}, "JPY 1.00"),
        (None, ""),
    ],
)
def test_price_text(price: dict[str, object] | None, text: str) -> None:
    assert screen.price_text(price) == text


def test_vend_outcome_messages() -> None:
    assert screen.failure(0, 2) == ("Sorry, failed", "Refund on way")
    assert screen.failure(1, 2) == ("Only 1/2 given", "Refund for rest")
    assert screen.rejected("insufficient_stock") == ("Not enough stock", "Refund on way")
    assert all(len(line) <= 16 for pair in (screen.thanks(), screen.expired()) for line in pair)
