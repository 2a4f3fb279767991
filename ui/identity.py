"""Who is using the dashboard. Every page asks current_user(); tests replace it via environment.

Placeholder until sign-in lands: the demo identity comes from DASHBOARD_USER / DASHBOARD_ROLE.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ADMIN, SUPPORT, CLIENT = "admin", "support", "client"


@dataclass(frozen=True)
class User:
    email: str
    name: str
    role: str
    tenant_id: str | None = None  # set for client users: the one tenant they may see

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def current_user() -> User:
    email = os.environ.get("DASHBOARD_USER", "demo.engineer@example.com")
    role = os.environ.get("DASHBOARD_ROLE", ADMIN)
    return User(email=email, name=email.split("@")[0], role=role,
                tenant_id=os.environ.get("DASHBOARD_TENANT"))
