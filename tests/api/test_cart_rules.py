"""The cart's pricing and the per-line settlement rules, pure (no database)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import InvalidItems, ItemsRequired, SlotOutOfStock, SlotUnavailable
from api.lifecycle import vend
from api.lifecycle.snapshot import Line
from api.services import cart, outgoing, planogram
from schema.models import Machine, MachineSlot, Product


def row(
    slot_id: str,
    motor: int,
    stock: int,
    price: int | None = None,
    *,
    enabled: bool = True,
    name: str = "Cola",
) -> planogram.Row:
    product = Product(id=f"p-{slot_id}", name=name, price_amount=2000, currency="INR", active=True)
    slot = MachineSlot(
        slot_id=slot_id,
        motor=motor,
        stock=stock,
        capacity=10,
        par=8,
        price_amount=price,
        enabled=enabled,
    )
    return slot, product


SLOTS = [row("A1", 3, 5), row("A2", 0, 1, 1200), row("B1", 1, 4, enabled=False)]


def test_items_are_priced_per_slot_and_keep_their_motor() -> None:
    basket = cart.price([("A1", 2), ("A2", 1)], SLOTS, 5)
    assert basket.amount == 2 * 2000 + 1200 and basket.quantity == 3
    assert [(line.slot, line.motor, line.unit_amount) for line in basket.lines] == [
        ("A1", 3, 2000),
        ("A2", 0, 1200),
    ]


def test_out_of_stock_names_the_slot_unless_it_is_the_only_one() -> None:
    with pytest.raises(SlotOutOfStock, match=r"^only 1 left in A2 \(Cola\)$"):
        cart.price([("A2", 2)], SLOTS, 5)
    with pytest.raises(SlotOutOfStock, match=r"^only 5 left in this machine$"):
        cart.price([("A1", 6)], SLOTS[:1], 9)


def test_the_v1_form_needs_a_one_slot_machine() -> None:
    assert cart.items_of(None, 2, SLOTS[:1]) == [("A1", 2)]
    with pytest.raises(ItemsRequired):
        cart.items_of(None, 2, SLOTS)
    with pytest.raises(InvalidItems):
        cart.items_of([{"slot": "A1", "quantity": 1}], 1, SLOTS)


@pytest.mark.parametrize(
    ("items", "error", "slot"),
    [
        ([("A1", 1), ("A1", 1)], InvalidItems, None),
        ([("A1", 5), ("A2", 1)], InvalidItems, None),  # 6 units > 5
        ([("Z9", 1)], InvalidItems, None),
        ([], InvalidItems, None),
        ([("A2", 2)], SlotOutOfStock, "A2"),
        ([("B1", 1)], SlotUnavailable, "B1"),
    ],
)
def test_bad_carts_are_refused(
    items: list[tuple[str, int]], error: type[Exception], slot: str | None
) -> None:
    with pytest.raises(error) as refused:
        cart.price(items, SLOTS, 5)
    assert getattr(refused.value, "slot", None) == slot


lines = st.lists(st.tuples(st.integers(1, 5), st.integers(100, 5000)), min_size=1, max_size=6)


@given(lines, st.integers(0, 40))
def test_a_total_fills_lines_in_order_and_refunds_the_rest(
    ordered: list[tuple[int, int]], dispensed: int
) -> None:
    made = tuple(Line(f"S{i}", f"p{i}", q, 0, u) for i, (q, u) in enumerate(ordered))
    counts = [line.dispensed for line in vend.counted(made, dispensed, None)]
    total = sum(q for q, _ in ordered)
    assert sum(counts) == min(dispensed, total)
    assert all(0 <= n <= q for n, (q, _) in zip(counts, ordered, strict=True))
    # A later line only gets units once every earlier one is complete.
    for i, n in enumerate(counts):
        if n:
            assert all(counts[j] == ordered[j][0] for j in range(i))
    out = vend.counted(made, dispensed, None)
    refund = vend.undispensed(out)
    paid = sum(q * u for q, u in ordered)
    sold = sum(line.dispensed * line.unit_amount for line in out)
    assert refund + sold == paid and 0 <= refund <= paid


@given(lines, st.lists(st.integers(-3, 9), min_size=6, max_size=6))
def test_reported_counts_are_believed_only_when_sound(
    ordered: list[tuple[int, int]], reported: list[int]
) -> None:
    made = tuple(Line(f"S{i}", f"p{i}", q, 0, u) for i, (q, u) in enumerate(ordered))
    said = {f"S{i}": n for i, n in enumerate(reported[: len(made)])}
    total = sum(max(0, n) for n in said.values())
    out = vend.counted(made, total, said)
    sound = all(0 <= said[line.slot] <= line.quantity for line in made)
    if sound:  # the machine's own per-line counts
        assert [line.dispensed for line in out] == [said[line.slot] for line in made]
    else:  # else the total laid over the lines in order, each within its line
        assert out == vend.spread(made, total)
    assert all(0 <= line.dispensed <= line.quantity for line in out)


def test_sixty_slots_fit_in_a_desired_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The largest planogram (60 slots, 40-character names in three-byte letters) stays
    well under the 16 KiB MQTT payload limit."""
    found = [row(f"S{i}", i, 9, name="₹" * 40) for i in range(60)]
    machine = Machine(
        id="m" * 32,
        mode="in_service",
        desired_version=7,
        price_amount=2000,
        currency="INR",
        stock=540,
        display_code="123456",
        display_code_expires_at=1_800_000_000,
        desired_slots=planogram.desired_slots([planogram.slot_row(*r) for r in found], "INR"),
    )
    monkeypatch.setattr(outgoing, "carries", lambda kind, field: True)
    shown = outgoing.desired_payload(machine, None)
    assert shown["slots"][0] == {  # type: ignore[typeddict-item]
        "id": "S0",
        "motor": 0,
        "name": "₹" * 40,
        "price": {"amount": 2000, "currency": "INR"},
        "stock": 9,
        "enabled": True,
    }
    assert len(json.dumps(shown, ensure_ascii=False).encode()) < 16384
    state = outgoing.state_payload(machine, False)
    assert all("motor" not in s for s in state["slots"])  # type: ignore[typeddict-item]


def test_slots_are_sent_only_once_the_wire_knows_them() -> None:
    machine = Machine(
        id="m1",
        mode="in_service",
        desired_version=1,
        price_amount=2000,
        currency="INR",
        stock=1,
        desired_slots=planogram.desired_slots([planogram.slot_row(*row("1", 0, 1))], "INR"),
    )
    shown = outgoing.desired_payload(machine, None)
    assert ("slots" in shown) == outgoing.carries("desired", "slots")
