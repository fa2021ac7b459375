"""platform core

Revision ID: 6a5ea7246a22
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6a5ea7246a22"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(length=100), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("unique_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("unique_key", name=op.f("uq_jobs_unique_key")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_status_run_at", ["status", "run_at"], unique=False)

    op.create_table(
        "sandbox_merchants",
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("apiv3_key", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mchid", name=op.f("pk_sandbox_merchants")),
    )
    op.create_table(
        "sandbox_notifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("notify_url", sa.String(length=500), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_notifications")),
    )
    with op.batch_alter_table("sandbox_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sandbox_notifications_mchid"), ["mchid"], unique=False)

    op.create_table(
        "sandbox_orders",
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("prepay_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=127), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("payer_openid", sa.String(length=128), nullable=False),
        sa.Column("attach", sa.String(length=128), nullable=True),
        sa.Column("notify_url", sa.String(length=500), nullable=False),
        sa.Column("trade_state", sa.String(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mchid", "out_trade_no", name=op.f("pk_sandbox_orders")),
    )
    op.create_table(
        "sandbox_platform_keys",
        sa.Column("key_id", sa.String(length=80), nullable=False),
        sa.Column("private_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_sandbox_platform_keys")),
    )
    op.create_table(
        "sandbox_refunds",
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("notify_url", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("mchid", "out_refund_no", name=op.f("pk_sandbox_refunds")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("parent_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["tenants.id"], name=op.f("fk_tenants_parent_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_idempotency_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=10), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("pending_out", sa.BigInteger(), nullable=False),
        sa.Column("pending_in", sa.BigInteger(), nullable=False),
        sa.Column("overdraft_allowed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_accounts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint(
            "tenant_id", "owner", "asset", name=op.f("uq_ledger_accounts_tenant_id_owner_asset")
        ),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("transfer_id", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reversed_amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reverses_id", sa.String(length=40), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_transfers_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint(
            "tenant_id", "transfer_id", name=op.f("uq_ledger_transfers_tenant_id_transfer_id")
        ),
    )
    op.create_table(
        "payment_notifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=True),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_notifications_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_notifications")),
        sa.UniqueConstraint(
            "tenant_id",
            "notification_id",
            name=op.f("uq_payment_notifications_tenant_id_notification_id"),
        ),
    )
    op.create_table(
        "payment_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("out_trade_no", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=127), nullable=False),
        sa.Column("payer_openid", sa.String(length=128), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("attach", sa.String(length=128), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("prepay_id", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("refund_reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_orders_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_orders")),
        sa.UniqueConstraint(
            "tenant_id", "out_trade_no", name=op.f("uq_payment_orders_tenant_id_out_trade_no")
        ),
    )
    with op.batch_alter_table("payment_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_orders_status_created_at", ["status", "created_at"], unique=False
        )
        batch_op.create_index("ix_payment_orders_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "payment_provider_configs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("mchid", sa.String(length=32), nullable=False),
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("merchant_serial_no", sa.String(length=64), nullable=False),
        sa.Column("merchant_private_key_pem", sa.Text(), nullable=False),
        sa.Column("apiv3_key", sa.String(length=32), nullable=False),
        sa.Column("platform_public_key_id", sa.String(length=80), nullable=False),
        sa.Column("platform_public_key_pem", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_payment_provider_configs_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_payment_provider_configs")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_endpoints_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_endpoints_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "webhook_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_messages_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_messages")),
    )
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_messages_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("transfer_pk", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_pk"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_entries_transfer_pk_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transfer_pk"), ["transfer_pk"], unique=False
        )

    op.create_table(
        "ledger_holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("hold_id", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=10), nullable=False),
        sa.Column("from_account_id", sa.String(length=40), nullable=False),
        sa.Column("to_account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("posted_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transfer_pk", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_holds_from_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_holds_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_holds_to_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_holds")),
        sa.UniqueConstraint("tenant_id", "hold_id", name=op.f("uq_ledger_holds_tenant_id_hold_id")),
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["payment_orders.id"],
            name=op.f("fk_payment_refunds_order_id_payment_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_refunds_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
        sa.UniqueConstraint(
            "tenant_id", "out_refund_no", name=op.f("uq_payment_refunds_tenant_id_out_refund_no")
        ),
    )
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["webhook_messages.id"],
            name=op.f("fk_webhook_deliveries_message_id_webhook_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_deliveries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_endpoint_id"), ["endpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_tenant_id_id", ["tenant_id", "id"], unique=False
        )

    op.create_table(
        "webhook_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_tenant_id_id")
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_message_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_endpoint_id"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_refunds_order_id"))

    op.drop_table("payment_refunds")
    op.drop_table("ledger_holds")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transfer_pk"))
        batch_op.drop_index("ix_ledger_entries_account_id_id")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("webhook_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_messages_tenant_id_id")

    op.drop_table("webhook_messages")
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_tenant_id"))

    op.drop_table("webhook_endpoints")
    op.drop_table("payment_provider_configs")
    with op.batch_alter_table("payment_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_orders_tenant_id_id")
        batch_op.drop_index("ix_payment_orders_status_created_at")

    op.drop_table("payment_orders")
    op.drop_table("payment_notifications")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("sandbox_refunds")
    op.drop_table("sandbox_platform_keys")
    op.drop_table("sandbox_orders")
    with op.batch_alter_table("sandbox_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_notifications_mchid"))

    op.drop_table("sandbox_notifications")
    op.drop_table("sandbox_merchants")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_run_at")

    op.drop_table("jobs")
