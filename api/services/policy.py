"""The numbers the vend rules run on, taken from settings once."""

from dataclasses import dataclass

from api.lifecycle import decide
from api.settings import Settings


@dataclass(frozen=True)
class VendPolicy:
    display_code_ttl_s: int = 600
    lock_ttl_s: int = 300
    command_ttl_s: int = 60
    unit_run_s: int = 10
    max_quantity: int = 5
    code_failure_budget: int = 10
    code_failure_refill_s: int = 15
    client_failure_limit: int = 5
    source_failure_limit: int = 1000
    source_failures_per_day: int = 43_200
    failure_window_s: int = 300
    fleet_code_only_limit: int = 20
    fleet_code_only_refill_s: int = 30
    low_stock_threshold: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> "VendPolicy":
        return cls(
            display_code_ttl_s=settings.display_code_ttl_s,
            lock_ttl_s=settings.lock_ttl_s,
            command_ttl_s=settings.command_ttl_s,
            unit_run_s=settings.unit_run_s,
            max_quantity=settings.max_quantity,
            code_failure_budget=settings.code_failure_budget,
            code_failure_refill_s=settings.code_failure_refill_s,
            client_failure_limit=settings.client_failure_limit,
            source_failure_limit=settings.source_failure_limit,
            source_failures_per_day=settings.source_failures_per_day,
            failure_window_s=settings.failure_window_s,
            fleet_code_only_limit=settings.fleet_code_only_limit,
            fleet_code_only_refill_s=settings.fleet_code_only_refill_s,
            low_stock_threshold=settings.low_stock_threshold,
        )

    def command_deadline(self, expires_at: int, quantity: int) -> int:
        """When silence about a command starts to count as ``unknown``."""
        return decide.command_deadline(expires_at, quantity, self.unit_run_s)
