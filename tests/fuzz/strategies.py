"""Hypothesis strategies for bad input: JSON of every shape, near-valid request bodies with fields
broken, ids with Unicode digits, raw query strings, tokens (forged, expired, malformed)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import quote

import jwt
from hypothesis import strategies as st

#: Ids that once got through (Unicode digits) or that parsers commonly mistake for numbers.
TRICKY_IDS = [
    "²",
    "\u0661",  # ARABIC-INDIC DIGIT ONE
    "1\u0661",
    "\u0663\u0664",
    "\U0001d7d9",  # MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
    "½",
    "\uff11",  # FULLWIDTH DIGIT ONE
    "0x1",
    "1e3",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1_0",
    "01",
    "",
    "\x00",
    "9" * 40,
    "1 OR 1=1",
    "../1",
    "%31",
    "424242",
    "1",
]

texts = st.text(max_size=40) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10
)
huge_ints = st.integers(min_value=-(2**80), max_value=2**80)
numbers = st.integers(-3, 3) | huge_ints | st.floats(allow_nan=False, allow_infinity=False)
json_leaves = st.none() | st.booleans() | numbers | texts | st.sampled_from(TRICKY_IDS)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=16,
)
ids = st.sampled_from(TRICKY_IDS) | texts | st.integers(0, 50).map(str) | huge_ints.map(str)
#: What a field may be replaced with: another type, a tricky id, a huge number, nested JSON.
field_values = json_values | ids


def _deep(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


raw_bodies = st.one_of(
    st.just(b""),
    st.just(b"   "),
    st.binary(max_size=64),
    st.integers(100, 200_000).map(lambda n: _deep(n, b"[", b"]")),
    st.integers(100, 50_000).map(lambda n: _deep(n, b'{"items":', b"}")),
    st.sampled_from(
        [
            b"null",
            b"NaN",
            b'{"items": [1e999]}',
            b'{"items": [{"id": "\\ud800"}]}',
            b'{"items": "\\udfff"}',
            b"\xef\xbb\xbf{}",
            b'{"items": [], "items": 5}',
            b'{"items": [{"id": "1"}]',
            b"[" * 3 + b"{",
            b'"' + b"a" * 100_000 + b'"',
        ]
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """``template`` with one to three of its parts replaced, removed or joined by a stranger."""
    value = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)))
        replacement = draw(field_values)
        if not path:
            value = replacement
            continue
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = replacement
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(texts)] = replacement
        else:
            parent.append(replacement)
        if not isinstance(value, (dict, list)):
            break
    return value


def terminal_spec() -> dict[str, Any]:
    return {
        "application": {"name": "terminal", "version": "1"},
        "product": {"id": "compute-example", "category": "compute-example", "provider": "local"},
        "name": "fuzz",
        "replicas": 1,
        "timeAllocation": {"hours": 0, "minutes": 5, "seconds": 0},
        "parameters": {},
        "resources": [],
    }


#: A valid body of every bulk call, for ``mutated`` to break.
BODY_TEMPLATES: dict[str, Any] = {
    "jobs.create": {"items": [terminal_spec()]},
    "jobs.terminate": {"items": [{"id": "424242"}]},
    "jobs.extend": {
        "items": [{"jobId": "424242", "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]
    },
    "jobs.openInteractiveSession": {"items": [{"id": "424242", "rank": 0, "sessionType": "SHELL"}]},
}


def _no_batch(body: Any) -> bool:
    """Generated bodies never start the batch application (it runs a generated command)."""
    return "batch" not in json.dumps(body)


def bodies(call: str) -> st.SearchStrategy[bytes]:
    """Bodies for ``call``: broken versions of a valid one, any JSON, raw bytes."""
    template = BODY_TEMPLATES.get(call)
    near = (
        mutated(template).filter(_no_batch).map(lambda v: json.dumps(v).encode())
        if template is not None
        else st.nothing()
    )
    return st.one_of(near, near, raw_bodies)


#: Query parameter names the servers know, and values for them.
QUERY_KEYS = [
    "id",
    "itemsPerPage",
    "next",
    "filterState",
    "filterIds",
    "filterCreatedAfter",
    "filterCreatedBefore",
    "filterApplication",
    "filterProduct",
    "includeUpdates",
    "includeProduct",
    "includeSupport",
    "includeOthers",
    "includeParameters",
    "sortBy",
    "sortDirection",
    "filterName",
    "filterProvider",
    "filterCategory",
    "filterProductType",
    "usernameHint",
    "since",
]
query_values = (
    ids
    | st.sampled_from(["true", "false", "RUNNING", "SUCCESS", "a@b@c", "@@", "1,2,x", ",,,"])
    | st.lists(st.integers(0, 30).map(str), max_size=1100).map(",".join)
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """A query string (without ``?``): known and unknown keys, repeated keys, and raw garbage
    such as bad percent escapes and bytes that are not UTF-8."""
    pairs = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS) | texts, query_values), max_size=5))
    parts = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
    parts += draw(
        st.lists(
            st.sampled_from(["%", "%z", "%ff%fe", "id=%80", "=", "&", "id", "id==1", "%00=%00"]),
            max_size=3,
        )
    )
    return "&".join(draw(st.permutations(parts)))


def header_safe(text: str) -> str:
    """``text`` without what HTTP forbids in a header value (control characters but tab): such
    a request is not HTTP, and tornado's parser refuses it before any handler sees it."""
    return "".join(c for c in text if c == "\t" or " " <= c != "\x7f")


header_texts = texts.map(header_safe)


def visible(text: str) -> str:
    """``text`` without control characters (C0, DEL, C1)."""
    return "".join(c for c in text if not (c < " " or "\x7f" <= c <= "\x9f"))


#: Typing with Ctrl-C, Ctrl-\ and Ctrl-Z between visible text: at bash's prompt these run
#: nothing; each starts the skip of stale output in the bridge, and its ack waits for the
#: terminal to act on it in the embedded server (``local/pty_packets.py``).
interrupted_typing = st.lists(
    st.sampled_from(["\x03", "\x1c", "\x1a"]) | texts.map(visible), min_size=1, max_size=4
).map("".join)


def forged_tokens(secret: bytes) -> st.SearchStrategy[str | None]:
    """Bearer tokens that must all be refused: none, garbage, a JWT signed with another secret,
    one with ``alg: none``, an expired one signed with the real secret, wrong claims."""
    now = int(time.time())
    claims = {
        "sub": "user",
        "iat": now,
        "exp": now + 600,
        "aud": ["all:write"],
        "iss": "cloud.sdu.dk",
        "role": "USER",
    }
    forged = [
        jwt.encode(claims, b"x" * 64, algorithm="HS512"),
        jwt.encode(claims, secret, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS512"),
        jwt.encode({**claims, "role": "GUEST"}, secret, algorithm="HS512"),
        jwt.encode({**claims, "sub": 5}, secret, algorithm="HS512"),  # type: ignore[dict-item]
        jwt.encode({**claims, "iss": "elsewhere"}, secret, algorithm="HS512"),
        "uc1-" + "a" * 32,
        "ucffffffffffffffff-" + "a" * 32,
        "x" * 10_000,
        "Bearer",
        "",
    ]
    return st.none() | st.sampled_from(forged) | header_texts
