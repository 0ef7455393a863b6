"""Webhooks: a service account's subscriptions to the events it may see, and their delivery,
signed per Standard Webhooks, through the task queue (spec section 7)."""
