"""Events: the durable record of every change (created, updated with which keys, deleted), written
in the transaction of the change with its origin (`sis` or `api`), and what is built on it: the
feed, webhooks and the SIS's write-back."""
