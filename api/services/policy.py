"""The numbers the vend rules run on, taken from settings once."""

from dataclasses import dataclass

from api.settings import Settings


@dataclass(frozen=True)
class VendPolicy:
    display_code_ttl_s: int = 600
    lock_ttl_s: int = 300
    command_ttl_s: int = 60
    unit_run_s: int = 10
    max_quantity: int = 5
    code_failure_budget: int = 20
    client_failure_limit: int = 5
    source_failure_limit: int = 60
    failure_window_s: int = 300
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
            client_failure_limit=settings.client_failure_limit,
            source_failure_limit=settings.source_failure_limit,
            failure_window_s=settings.failure_window_s,
            low_stock_threshold=settings.low_stock_threshold,
        )

    def command_deadline(self, expires_at: int, quantity: int) -> int:
        """When silence about a command starts to count as ``unknown``."""
        return expires_at + self.unit_run_s * quantity
