"""Shared collector machinery: normalisation, data quality, store-and-forward writing."""
