"""Runs untrusted programs in subprocesses with hard limits and isolation (see issue: sandbox)."""
