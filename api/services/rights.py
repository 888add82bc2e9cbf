"""Who may do what: four roles, six rights, an optional scope to locations.

Pure: routes ask ``Principal.check(right)`` and ``Principal.sees(location)``;
``api.http.deps.require`` and ``web.admin.guard.admin_page`` do it for them.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from api.errors import Forbidden
from schema.models import USER_ROLES


class Right(StrEnum):
    READ = "read"  # fleet, orders, reports, audit
    STOCK = "stock"  # stock, restock, pick lists
    PRICES = "prices"  # prices, products, planograms, machine mode
    REFUNDS = "refunds"
    MACHINES = "machines"  # machines and keys, firmware and rollouts, integrators
    USERS = "users"  # users and outgoing webhooks


ROLES: tuple[str, ...] = USER_ROLES
RIGHTS: dict[str, frozenset[Right]] = {
    "admin": frozenset(Right),
    "operator": frozenset(Right) - {Right.USERS},
    "restocker": frozenset({Right.READ, Right.STOCK}),
    "viewer": frozenset({Right.READ}),
}
_WHAT = {
    Right.READ: "read the fleet",
    Right.STOCK: "change stock",
    Right.PRICES: "change prices, products or modes",
    Right.REFUNDS: "issue refunds",
    Right.MACHINES: "manage machines, keys, firmware or integrators",
    Right.USERS: "manage users or webhooks",
}


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    locations: tuple[str, ...] | None = None  # None: every location

    def can(self, right: Right) -> bool:
        return right in RIGHTS.get(self.role, frozenset())

    def check(self, right: Right) -> "Principal":
        if not self.can(right):
            raise Forbidden(
                f"a{'n' if self.role[0] in 'aeiou' else ''} {self.role} may not {_WHAT[right]}"
            )
        return self

    def sees(self, location: str | None) -> bool:
        return self.locations is None or (location or "") in self.locations

    def check_machine(self, machine_id: str, location: str | None) -> None:
        if not self.sees(location):
            raise Forbidden(f"machine {machine_id} is outside your locations")


def clean_locations(values: Iterable[object] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    out = tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
    return out
