"""The platform's Kubernetes names, for every copy-ready command ([kubernetes] in dashboard.toml).

The platform's own manifests (k8s/production) run in namespace `production`; its support
documents say `ai-agents-production`. Each cluster says which in configuration, never in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.config import rules


@dataclass(frozen=True)
class Names:
    namespace: str
    api: str  # the API deployment (it also reaches Redis)
    worker: str  # the Celery worker deployment
    hpa: str  # the workers' HorizontalPodAutoscaler
    redis_host: str  # Redis as redis-cli sees it from the API pod

    def logs(self, deployment: str, since: str) -> str:
        return f"kubectl logs deployment/{deployment} -n {self.namespace} --since={since}"

    def restart(self, deployment: str) -> str:
        return f"kubectl rollout restart deployment/{deployment} -n {self.namespace}"

    def scale_workers(self, replicas: int | str) -> str:
        return f"kubectl scale deployment/{self.worker} -n {self.namespace} --replicas={replicas}"

    def worker_pods(self) -> str:
        return f"kubectl get pods -n {self.namespace} | grep {self.worker}"

    def redis_cli(self) -> str:
        return (
            f"kubectl exec -it deployment/{self.api} -n {self.namespace}"
            f" -- redis-cli -h {self.redis_host}"
        )


def names() -> Names:
    config = rules("kubernetes")
    return Names(
        config["namespace"],
        config["api_deployment"],
        config["worker_deployment"],
        config["worker_hpa"],
        config["redis_host"],
    )
