"""Tests for the security review's findings (issue 13)."""
