"""Pulumi program tests, under mocks (no AWS account, no Pulumi CLI)."""
