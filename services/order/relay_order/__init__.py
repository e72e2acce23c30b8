"""The order service: restaurant orders and items, their status rules, and their events (SPEC §5)."""
