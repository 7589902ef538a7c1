"""Popular-science articles."""
