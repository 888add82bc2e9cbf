"""The vend rules' numbers come from the settings, with the settings' defaults."""

from dataclasses import fields

from api.services.policy import VendPolicy
from api.settings import PREFIX, Settings


def test_policy_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.from_env({PREFIX + "ENV": "dev"})
    assert VendPolicy() == VendPolicy.from_settings(defaults)


def test_every_number_is_taken_from_the_settings() -> None:
    names = [f.name for f in fields(VendPolicy)]
    environ = {PREFIX + "ENV": "dev"}
    environ |= {PREFIX + name.upper(): str(100 + i) for i, name in enumerate(names)}
    policy = VendPolicy.from_settings(Settings.from_env(environ))
    assert [getattr(policy, name) for name in names] == [100 + i for i in range(len(names))]
