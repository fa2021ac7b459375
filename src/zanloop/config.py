"""Settings, read once from the environment (prefix ``ZANLOOP_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZANLOOP_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/zanloop.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # Where providers reach us (notify URLs); defaults to http://host:port.
    public_url: str | None = None
    data_dir: Path = Path("var")

    payment_provider: Literal["sandbox", "wechatpay"] = "sandbox"
    # WeChat retries a notification 15 times over about 24 hours; tests and demos squeeze
    # the same schedule by this factor.
    # Point the wechatpay provider at another gateway (a staging proxy, a local stub).
    wechatpay_gateway: str | None = None
    sandbox_retry_scale: float = Field(default=1.0, gt=0)
    # Seconds after which an unpaid order with no notification is queried at the provider.
    reconcile_after_seconds: int = 60
    notify_timestamp_window_seconds: int = 300

    # Standard Webhooks retry schedule, scaled like the sandbox's.
    webhook_retry_scale: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = 10.0

    run_worker_in_process: bool = True
    worker_poll_seconds: float = 0.5
    worker_batch_size: int = 20
    job_lease_seconds: int = 60

    log_json: bool = True
    log_level: str = "INFO"
    bootstrap_demo_tenant: bool = True

    # Risk counters: in this process by default; a Redis URL shares them between processes.
    redis_url: str | None = None

    # Group fraud detection: the scheduled scan looks back this many days (0: never runs).
    fraud_scan_days: int = Field(default=30, ge=0, le=92)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
