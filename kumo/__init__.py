"""kumo: a private cloud that speaks the OpenStack API."""

__version__ = "0.1.0"
