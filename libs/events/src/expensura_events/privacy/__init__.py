"""The platform's privacy obligations that every service shares, in one place.

- `restriction_rules`: stopped processing and erasure as states, and RUL-2's rule (pure);
- `restrictions`: those states stored per subject, and the RUL-2 check on every append;
- `lifecycle`: the `subject-lifecycle` projection that applies identity's rights events;
- `access`: every read of personal data recorded as an event (SEC-3, RUL-1, RGT-1);
- `shredding`: destroying a subject's key, retention holds and their end (RGT-3).

Nothing here imports the runtime: what these modules need of a service is declared in
`ports.ServiceLog`, which the runtime satisfies.
"""
