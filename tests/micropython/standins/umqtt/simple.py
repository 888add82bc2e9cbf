"""Stand-in for micropython-lib's ``umqtt.simple``: hal.py subclasses its client."""


class MQTTClient:
    pass
