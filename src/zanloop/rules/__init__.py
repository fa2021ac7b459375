"""The one rules engine (campaigns now, loyalty next): rules as data, compiled once,
indexed by trigger."""
