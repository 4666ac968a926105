"""Records to tables: one report module per command, and the only formatting (rich table, markdown, JSON, CSV, HTML)."""
