"""Addresses in request paths: one path segment, whatever characters they hold.

`a/b@example.org` and `a%b@example.org` are valid addresses (RFC 5322 `atext` allows `/`
and `%`). An ASGI server decodes `%2F` into `/` in `scope["path"]` before litestar
routes, so an address sent as `a%2Fb%40example.org` (or unencoded) would split its
`{email:str}` segment and answer 404, which a client may read as "never seen".

The rule, applied at the HTTP edge (api/app.py, `http_edge`) to paths under the prefixes
that carry an address: an address always ends with its domain, and a domain never holds
a `/`, so the address segment runs from the prefix to the first `/` after the LAST `@`
(or to the end of the path); without an `@`, it runs to the next `/`, as routing does
anyway. In that segment `%` becomes `%25` and `/` becomes `%2F` (in that order), so
litestar sees one segment; each handler taking an `email` path parameter turns it back
with `address`. `raw_path` is left as the client sent it (ASGI: the bytes received;
litestar routes on `path` alone).
"""

from __future__ import annotations

from urllib.parse import unquote

# The routes whose next path segment is an address: /v1/suppressions/{email} (and
# /explain), /v1/audit/recipients/{email}/events, /console/address/{email} (and
# /suppress, /release).
ADDRESS_PREFIXES = ("/v1/suppressions/", "/v1/audit/recipients/", "/console/address/")


def routable(path: str) -> str:
    """`path` (decoded, as in `scope["path"]`) with the address after an address prefix
    escaped into one segment; any other path unchanged."""
    if not path.startswith(ADDRESS_PREFIXES):
        return path
    start = next(len(prefix) for prefix in ADDRESS_PREFIXES if path.startswith(prefix))
    at = path.rfind("@", start)
    end = path.find("/", start if at < 0 else at)
    if end < 0:
        end = len(path)
    segment = path[start:end]
    if "%" not in segment and "/" not in segment:
        return path
    escaped = segment.replace("%", "%25").replace("/", "%2F")
    return path[:start] + escaped + path[end:]


def address(segment: str) -> str:
    """The address an `{email}` path segment carries: undoes `routable`'s escaping."""
    return unquote(segment)


# What an address is logged as (api/logs.py): a log line carries no address.
EMAIL = "<email>"


def loggable(path: str) -> str:
    """`path` (decoded, as in `scope["path"]`) as a log line may show it: the address
    after an address prefix (the segment `routable` finds, `/` and `%` included) and any
    other path segment holding an `@` replaced by `<email>`; a path without an address
    unchanged (`/v1/suppressions`, `/v1/suppressions/check`)."""
    if "@" not in path:
        return path
    if path.startswith(ADDRESS_PREFIXES):
        start = next(len(prefix) for prefix in ADDRESS_PREFIXES if path.startswith(prefix))
        at = path.rfind("@", start)
        end = path.find("/", at)
        if end < 0:
            end = len(path)
        return path[:start] + EMAIL + path[end:]
    return "/".join(EMAIL if "@" in segment else segment for segment in path.split("/"))
