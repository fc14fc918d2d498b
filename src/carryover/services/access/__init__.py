"""Access: who may call carryover, on whose behalf and how often.

API keys and their scopes, the subscriber portal's sign-in links and sessions,
request rate limits shared by every worker process, and idempotent creation.
Keeps: a key or session sees only its own scope; a secret is stored only as a
hash; the first answer to an `Idempotency-Key` is the answer to every retry.
"""
