"""Real-time charging (Nchf): quota granted from the account's real balance.

The queue takes requests from every HTTP worker thread and answers them in
group commits (one transaction per batch of requests); books stay warm between
batches in the book cache. Keeps: a retransmitted update counts once (its usage
event id), a grant never exceeds what the account may spend, and the validity
of a grant ends at the next cycle boundary.
"""
