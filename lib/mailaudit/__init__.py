"""mailaudit: audit reports for Bitrix24 email-marketing data."""

__version__ = "0.2.0"
