"""Notify: notices to the operator's systems, through the outbox to webhooks.

Notices are decided from the account's state and written to the transactional
outbox in the transaction that changed it; delivery POSTs them, signed, to the
endpoints that want them, with retries and dead letters. Keeps: a notice is
written once per cause (its key), and a delivery is made only to a public
address (targets).
"""
