"""Helpers shared by the test suites (servers, sample resources)."""
