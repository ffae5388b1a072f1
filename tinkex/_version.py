"""Version numbers: ours, and the Tinker API version we speak."""

__version__ = "0.1.0"

#: The official SDK release whose API and wire protocol tinkex reproduces.
TINKER_SDK_VERSION = "0.38.0"
