"""The HTTP edge every service shares.

- `app`: `create_app`, health, readiness, the log feed, worker status, `/v1/me/data`;
- `problems`: problem+json (RFC 9457), the shared `Problem` kinds and their handlers;
- `auth`: the runtime and the caller as dependencies (`Runtime`, `CurrentUser`,
  `CurrentPrincipal`, `staff_with`);
- `middleware`: the request body limit (`settings.max_body_bytes`);
- `listeners`: which paths the public and the internal listener serve (`expensura serve`).
"""
