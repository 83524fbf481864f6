"""Energy and carbon accounting: units and factors, counter consumption and its plausibility,
the boundary ledger, tce and CO₂ per row, results, inventories and reports (docs/accounting.md)."""
