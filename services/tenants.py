"""The tenant directory: ids and display names only (no configuration, no secrets)."""

from __future__ import annotations

from dataclasses import dataclass

from services.db import admin_scope, read_frame


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    is_active: bool

    @property
    def label(self) -> str:
        suffix = "" if self.is_active else " (inactive)"
        return f"{self.name} · {self.tenant_id}{suffix}"


def list_tenants() -> list[Tenant]:
    """Every tenant, active first. Cross-tenant, so only for support and admin users."""
    with admin_scope() as conn:
        frame = read_frame(
            conn,
            "SELECT tenant_id, name, is_active FROM tenant_configs"
            " ORDER BY is_active DESC, lower(name)",
        )
    return [Tenant(r.tenant_id, r.name, bool(r.is_active)) for r in frame.itertuples()]
