"""Baremetal stock: public and private stock aggregates and the stock-request workflow."""
