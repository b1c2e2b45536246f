"""Celery tasks of shops: sending the shops' webhooks (thin wrappers over ``shops.webhooks``)."""

from celery import shared_task

from shops import webhooks


@shared_task(name="shops.webhook_chain_send")
def webhook_chain_send(delivery_id: int) -> int:
    """Send what is due in this delivery's chain, oldest first (a delivery that is gone, or
    already sent, is skipped; a second run finds the chain's head leased or done)."""
    return webhooks.webhook_chain_send(delivery_id=delivery_id)


@shared_task(name="shops.webhooks_send_due")
def webhooks_send_due() -> int:
    """Queue the chains whose next delivery is due: first sends lost with a worker, retries."""
    return webhooks.webhooks_send_due()
