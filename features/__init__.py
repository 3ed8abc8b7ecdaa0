"""The living documentation: one feature per promise, and the steps that run them."""
