"""The pre-specified analysis plan: parsing, error spending, boundaries, power, history."""
