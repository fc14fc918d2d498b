"""eSIM remote provisioning, operator side (GSMA SGP.22, docs/esim.md), as pure values and rules.

- identifiers: EID, ICCID and IMSI, each checked the way its standard says;
- activation: the activation code a subscriber scans (`LPA:1$<SM-DP+>$<MatchingID>`);
- states: a profile's life at the SM-DP+ and the requests that move it;
- status: ES2+ function execution status codes (subject and reason);
- notifications: the SM-DP+'s handleDownloadProgressInfo, parsed and interpreted;
- confirmation: confirmation codes, hashed for storage and proved by the device;
- classify: which of the above a piece of text is, and why it is not valid.

No I/O, no clock, no randomness: callers pass instants, salts and codes in.
"""
