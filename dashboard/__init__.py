"""Coordinators' web dashboard."""
