"""Secrets kept out of messages and records.

Text that comes from a server or an exception can carry the caller's token (a server
that echoes the Authorization header, an endpoint URL with ``user:token@``). Every
error line passes through ``redact``; URLs that are stored or printed pass through
``without_userinfo`` first.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_PATTERNS = (
    # Hugging Face tokens (hf_…, api_org_…) and other long bearer-style secrets
    (re.compile(r"\b(hf|api_org)_[A-Za-z0-9]{6,}"), lambda m: f"{m.group(1)}_{MASK}"),
    # Authorization header values: Bearer / Basic / token schemes
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), lambda m: f"{m.group(1)}{m.group(2)}{MASK}"),
    (re.compile(r"(?i)\b(token)(=|:\s*)[A-Za-z0-9._~+/=-]{4,}"), lambda m: f"{m.group(1)}{m.group(2)}{MASK}"),
    # userinfo in URLs: scheme://user:secret@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@"), lambda m: f"{m.group(1)}{MASK}@"),
    # secrets in query strings and key=value text
    (re.compile(r"(?i)\b(access_token|api_key|apikey|password|passwd|secret|hf_token)=[^\s&\"']+"),
     lambda m: f"{m.group(1)}={MASK}"),
)
_ENV_SECRETS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN")


def redact(text: str) -> str:
    """``text`` with token-shaped substrings (and the current HF token, whatever its shape) masked."""
    for name in _ENV_SECRETS:
        secret = os.environ.get(name)
        if secret and len(secret) >= 6 and secret in text:
            text = text.replace(secret, MASK)
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (and without query or fragment, where tokens also hide)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if not parts.scheme or not parts.netloc:
        return redact(url)
    host = parts.hostname or ""
    if ":" in host:   # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
