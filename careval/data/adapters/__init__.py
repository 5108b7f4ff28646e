"""Adapters: extracts in (HES, OMOP CDM, CSV), the canonical dataset out; pseudonymisation."""
