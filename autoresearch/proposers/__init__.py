"""Proposers: what invents the change tried in each cycle."""
