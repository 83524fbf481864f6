"""Lingtan auth proxy: the front door (login with MFA, RBAC, audit, read API, portal, Grafana proxy)."""
