"""zanloop: payment-backed engagement, where every like and every point stands on a real payment."""

__version__ = "0.1.0"
