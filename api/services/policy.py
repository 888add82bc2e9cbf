"""The numbers the vend rules run on, taken from settings once."""

from dataclasses import dataclass, fields

from api.lifecycle import decide
from api.settings import Settings


@dataclass(frozen=True)
class VendPolicy:
    """The vend rules' numbers; the defaults are the settings' own (one copy)."""

    display_code_ttl_s: int = Settings.display_code_ttl_s
    lock_ttl_s: int = Settings.lock_ttl_s
    command_ttl_s: int = Settings.command_ttl_s
    unit_run_s: int = Settings.unit_run_s
    max_quantity: int = Settings.max_quantity
    code_failure_budget: int = Settings.code_failure_budget
    code_failure_refill_s: int = Settings.code_failure_refill_s
    client_failure_limit: int = Settings.client_failure_limit
    source_failure_limit: int = Settings.source_failure_limit
    source_failures_per_day: int = Settings.source_failures_per_day
    failure_window_s: int = Settings.failure_window_s
    fleet_code_only_limit: int = Settings.fleet_code_only_limit
    fleet_code_only_refill_s: int = Settings.fleet_code_only_refill_s
    low_stock_threshold: int = Settings.low_stock_threshold

    @classmethod
    def from_settings(cls, settings: Settings) -> "VendPolicy":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def command_deadline(self, expires_at: int, quantity: int) -> int:
        """When silence about a command starts to count as ``unknown``."""
        return decide.command_deadline(expires_at, quantity, self.unit_run_s)
