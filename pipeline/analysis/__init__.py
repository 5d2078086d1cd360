"""Person-level analysis frames read from the warehouse, and the estimates built on them."""
