"""The data-access record: who looked at which tenant's data, when, why, and what came back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from services.db import write_scope

CROSS_TENANT = "*"


@dataclass(frozen=True)
class Access:
    actor: str
    actor_role: str
    tenant_id: str
    purpose: str
    query_kind: str
    query_params: dict[str, Any] = field(default_factory=dict)
    row_count: int | None = None
    sensitive_revealed: bool = False


def record(access: Access) -> None:
    with write_scope(admin=access.tenant_id == CROSS_TENANT) as conn:
        conn.execute(
            text(
                "INSERT INTO dashboard.data_access_log (actor, actor_role, tenant_id, purpose,"
                " query_kind, query_params, row_count, sensitive_revealed)"
                " VALUES (:actor, :role, :tenant, :purpose, :kind, CAST(:params AS jsonb),"
                " :rows, :sensitive)"
            ),
            {
                "actor": access.actor,
                "role": access.actor_role,
                "tenant": access.tenant_id,
                "purpose": access.purpose,
                "kind": access.query_kind,
                "params": json.dumps(access.query_params, default=str),
                "rows": access.row_count,
                "sensitive": access.sensitive_revealed,
            },
        )
