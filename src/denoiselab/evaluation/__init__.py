"""The evaluation layer: metrics, classic baselines, alignment, reports, test-set evaluation, device
reports and sweep comparison. Imports ``core`` only (never ``training``)."""
